;; Recursion that never ends must overflow the stack (a trap) in both modes:
;; in AOT, LLVM must not turn a wasm `call` into a loop.
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
      (else (i32.add (i32.const 1) (call $depth (i32.sub (local.get 0) (i32.const 1))))))))
