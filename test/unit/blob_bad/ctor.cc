// A global with a constructor: .init_array, which nothing in a blob runs.
#pragma GCC visibility push(hidden)
struct Counter {
  int v;
  Counter() : v(make()) {}
  static int make();
};
int Counter::make() { return 42; }
Counter counter;
asm(".pushsection .blob.entry,\"ax\",@progbits\n"
    ".globl __blob_entry\n"
    "__blob_entry:\n"
    "ret\n"
    ".popsection\n");
#pragma GCC visibility pop
