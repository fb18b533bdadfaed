;; Proposals the engine build enables: exception handling (as emscripten
;; emits it), tail calls, bulk memory and reference types.
(module
  (tag $oops (param i32))
  (memory (export "memory") 1)
  (table $t 2 funcref)
  (func $thrower (param i32) (throw $oops (local.get 0)))
  (func (export "catch") (param i32) (result i32)
    (try (result i32)
      (do (call $thrower (local.get 0)) (i32.const -1))
      (catch $oops (i32.add (i32.const 1000)))))
  (func (export "uncaught") (param i32) (result i32)
    (call $thrower (local.get 0))
    (i32.const 0))
  ;; count down a million times in tail position: no stack growth
  (func $countdown (export "countdown") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0))
      (then (i64.const 42))
      (else (return_call $countdown (i64.sub (local.get 0) (i64.const 1))))))
  (func (export "fill") (param i32 i32 i32)
    (memory.fill (local.get 0) (local.get 1) (local.get 2)))
  (func (export "null_ref") (result i32)
    (ref.is_null (table.get $t (i32.const 0)))))
