;; Two tags, as a C++ program using setjmp would have: __cpp_exception (an
;; i32 pointer) and __c_longjmp (an i64 here): a handler for one tag lets the
;; other through, catch_all takes both, a throw inside a try body of the same
;; function goes to its handlers (hb_beamr_eh: a branch, not a host call).
(module
  (type $t (func (param i32)))
  (tag $cpp (param i32))
  (tag $lj (param i64))
  (table 2 funcref)
  (elem (i32.const 0) $throw_cpp $throw_lj)
  (func $throw_cpp (param i32) (throw $cpp (local.get 0)))
  (func $throw_lj (param i32) (throw $lj (i64.extend_i32_u (local.get 0))))

  ;; The inner try catches longjmps only; the outer one C++ exceptions.
  (func (export "mixed") (param $which i32) (param $v i32) (result i32)
    try (result i32)
      try (result i32)
        (call_indirect (type $t) (local.get $v) (local.get $which))
        i32.const 0
      catch $lj
        i32.wrap_i64
        i32.const 1000
        i32.add
      end
    catch $cpp
      i32.const 2000
      i32.add
    end)

  (func (export "catch_all") (param $which i32) (param $v i32) (result i32)
    try (result i32)
      (call_indirect (type $t) (local.get $v) (local.get $which))
      i32.const 0
    catch_all
      i32.const 3000
    end)

  ;; A C++ exception through a longjmp handler, uncaught.
  (func (export "only_lj") (param $which i32) (param $v i32) (result i32)
    try (result i32)
      (call_indirect (type $t) (local.get $v) (local.get $which))
      i32.const 0
    catch $lj
      i32.wrap_i64
    end)

  ;; A throw in a try body, past a handler of the other tag.
  (func (export "direct") (param $v i32) (result i32)
    try (result i32)
      try (result i32)
        (throw $cpp (local.get $v))
      catch $lj
        drop
        i32.const -1
      end
    catch $cpp
    end))
