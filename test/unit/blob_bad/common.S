// A COMMON symbol (-fcommon): no section, so nothing reserves its space.
	.section .blob.entry,"ax",@progbits
	.globl __blob_entry
__blob_entry:
	ret
	.comm shared_counter, 8, 8
	.section .note.GNU-stack,"",@progbits
