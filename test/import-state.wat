;; A call that writes memory and a mutable global, waits in an import, then
;; reads them back: whatever changes the state while it waits shows in its
;; result.
(module
  (import "env" "wait" (func $wait (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (func (export "store") (param i32)
    (i32.store (i32.const 0) (local.get 0))
    (global.set $g (local.get 0)))
  ;; Stores its argument, waits in the import, then answers the sum of what
  ;; memory and the global hold (twice the argument if nothing changed).
  (func (export "store_wait_load") (param i32) (result i32)
    (i32.store (i32.const 0) (local.get 0))
    (global.set $g (local.get 0))
    (drop (call $wait (local.get 0)))
    (i32.add (i32.load (i32.const 0)) (global.get $g)))
  (func (export "load") (result i32)
    (i32.add (i32.load (i32.const 0)) (global.get $g))))
