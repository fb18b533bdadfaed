;; Code that never ends, for timeouts and stop/1: an empty loop, a loop that
;; counts, and one that keeps calling a function.
(module
  (global $count (mut i64) (i64.const 0))
  (func $tick (global.set $count (i64.add (global.get $count) (i64.const 1))))
  (func (export "forever") (loop $l (br $l)))
  (func (export "count_forever") (result i64)
    (loop $l (call $tick) (br $l))
    (global.get $count))
  (func (export "count") (result i64) (global.get $count))
  (func (export "quick") (result i32) (i32.const 7)))
