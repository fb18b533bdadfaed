;; A start function that takes a while (tens of milliseconds as bytecode):
;; its starter can be killed while it runs.
(module
  (global $n (mut i32) (i32.const 0))
  (func $init
    (loop $l
      (global.set $n (i32.add (global.get $n) (i32.const 1)))
      (br_if $l (i32.lt_u (global.get $n) (i32.const 3000000)))))
  (start $init)
  (func (export "n") (result i32) (global.get $n)))
