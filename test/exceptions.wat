;; Exception handling as emscripten emits it (try/catch/throw). The
;; interpreter runs it; WAMR's AOT compiler does not support it.
(module
  (tag $oops (param i32))
  (func $thrower (param i32) (throw $oops (local.get 0)))
  (func (export "catch") (param i32) (result i32)
    (try (result i32)
      (do (call $thrower (local.get 0)) (i32.const -1))
      (catch $oops (i32.add (i32.const 1000)))))
  (func (export "uncaught") (param i32) (result i32)
    (call $thrower (local.get 0))
    (i32.const 0)))
