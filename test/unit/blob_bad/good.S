// A known layout for the exact checks of gen-blob (test/unit/blob_test.cc):
//   0x0000 __blob_entry: lea table(%rip) (PC32 into .data), call helper (PLT32), ret
//   0x0010 helper (.text, 16-aligned)
//   0x0020 msg (.rodata)
//   0x1000 table (.data, first writable: on a page):
//          .quad helper (R_X86_64_64), .quad msg+2 (R_X86_64_64)
//   0x1010 zeros (.bss, 64 bytes)
	.section .blob.entry,"ax",@progbits
	.globl __blob_entry
__blob_entry:
	leaq table(%rip), %rax          # 48 8d 05 <rel32>: rel32 at 0x3
	call helper                     # e8 <rel32>: rel32 at 0x8
	ret
	.text
	.balign 16
	.globl helper
	.type helper,@function
helper:
	movl $7, %eax
	ret
	.size helper, .-helper
	.section .rodata
	.balign 16
	.globl msg
msg:
	.asciz "blob!"
	.data
	.balign 8
	.globl table
	.type table,@object
table:
	.quad helper
	.quad msg + 2
	.size table, .-table
	.bss
	.balign 16
	.globl zeros
zeros:
	.zero 64
	.section .note.GNU-stack,"",@progbits
