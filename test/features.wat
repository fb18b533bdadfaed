;; Proposals the engine build enables and AOT compiles: tail calls, bulk
;; memory and reference types (exception handling is in exceptions.wat).
(module
  (memory (export "memory") 1)
  (table $t 2 funcref)
  ;; count down a million times in tail position: no stack growth
  (func $countdown (export "countdown") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0))
      (then (i64.const 42))
      (else (return_call $countdown (i64.sub (local.get 0) (i64.const 1))))))
  (func (export "fill") (param i32 i32 i32)
    (memory.fill (local.get 0) (local.get 1) (local.get 2)))
  (func (export "null_ref") (result i32)
    (ref.is_null (table.get $t (i32.const 0)))))
