// Thread-local storage: there is no TLS block for a blob.
	.section .blob.entry,"ax",@progbits
	.globl __blob_entry
__blob_entry:
	ret
	.section .tbss,"awT",@nobits
	.globl per_thread
per_thread:
	.zero 8
	.section .note.GNU-stack,"",@progbits
