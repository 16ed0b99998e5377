// A call to a function the blob does not define (a libc call).
	.section .blob.entry,"ax",@progbits
	.globl __blob_entry
__blob_entry:
	call missing_function
	ret
	.section .note.GNU-stack,"",@progbits
