// A 32-bit absolute address: code compiled without -fpie.
	.section .blob.entry,"ax",@progbits
	.globl __blob_entry
__blob_entry:
	movq $target, %rax
	ret
	.data
target:
	.quad 0
	.section .note.GNU-stack,"",@progbits
