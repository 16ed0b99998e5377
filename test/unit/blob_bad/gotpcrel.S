// A GOT-relative load: what a default-visibility extern becomes.
	.section .blob.entry,"ax",@progbits
	.globl __blob_entry
__blob_entry:
	movq target@GOTPCREL(%rip), %rax
	ret
	.data
	.globl target
target:
	.quad 0
	.section .note.GNU-stack,"",@progbits
