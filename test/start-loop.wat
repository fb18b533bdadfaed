;; A start function that never ends (start/3's timeout must stop it).
(module
  (func $init (loop $l (br $l)))
  (start $init)
  (func (export "quick") (result i32) (i32.const 7)))
