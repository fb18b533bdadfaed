;; Recursion that never ends must overflow the stack (a trap) in both modes:
;; in AOT, LLVM must not turn a wasm `call` into a loop. A `return_call`,
;; though, is a jump: a million of them need no stack (in AOT too, where
;; LLVM dropped the tail call when it found the result constant).
(module
  (func $self (export "self") (call $self))
  (func $with_arg (export "with_arg") (param i32) (result i32)
    (call $with_arg (i32.add (local.get 0) (i32.const 1))))
  (func $even (export "even") (param i32) (result i32)
    (call $odd (i32.add (local.get 0) (i32.const 1))))
  (func $odd (param i32) (result i32)
    (call $even (i32.add (local.get 0) (i32.const 1))))
  (func $depth (export "depth") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 0))
      (else (i32.add (i32.const 1) (call $depth (i32.sub (local.get 0) (i32.const 1)))))))
  (func $count (export "count") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0))
      (then (i64.const 0))
      (else (return_call $count (i64.sub (local.get 0) (i64.const 1)))))))
