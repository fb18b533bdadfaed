;; One page of memory with "Hello, World!" at offset 66 (where HyperBEAM's
;; test-print has it), and a function that prints it through an import.
(module
  (import "env" "print" (func $print (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 66) "Hello, World!\00")
  (func (export "hello") (result i32)
    (call $print (i32.const 66) (i32.const 13))
    (i32.const 13)))
