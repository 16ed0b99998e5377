// No __blob_entry: nothing marks the entry section.
	.text
	.globl helper
helper:
	ret
	.section .note.GNU-stack,"",@progbits
