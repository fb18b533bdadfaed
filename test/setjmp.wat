;; setjmp/longjmp as emscripten lowers it with WebAssembly exception handling
;; (the shapes of aos' luaD_rawrunprotected/luaD_throw), for the AOT rewriting
;; (hb_beamr_eh): wasm64, a __c_longjmp tag carrying an i64 pointer, a try
;; around a call_indirect whose handler throws again when the jump buffer is
;; not its own, several setjmp sites with direct calls, nested protected
;; calls, catch_all with rethrow, delegate, uncaught throws and traps.
(module
  (type $cb (func (param i64 i64)))
  (tag $c_longjmp (param i64))
  (memory i64 1)
  (global $sp (mut i64) (i64.const 60000))
  (table 5 5 funcref)
  (elem (i32.const 0) $ok $jump $nested_inner $jump_outer $trapper)
  (export "memory" (memory 0))

  ;; longjmp(env, val): the payload points at {env, val}.
  (func $longjmp (param $env i64) (param $val i32)
    (i64.store (i64.const 1024) (local.get $env))
    (i32.store (i64.const 1032) (local.get $val))
    (throw $c_longjmp (i64.const 1024)))

  ;; n more frames, then longjmp(env, val); counts its frames at 2048.
  (func $deep (param $n i32) (param $env i64) (param $val i32)
    (i32.store (i64.const 2048) (i32.add (i32.load (i64.const 2048)) (i32.const 1)))
    (if (i32.eqz (local.get $n))
      (then (call $longjmp (local.get $env) (local.get $val))))
    (call $deep (i32.sub (local.get $n) (i32.const 1)) (local.get $env) (local.get $val)))

  ;; longjmp(env, n) through n frames when n > 0.
  (func $maybe_jump (param $env i64) (param $n i32)
    (if (i32.gt_s (local.get $n) (i32.const 0))
      (then (call $deep (i32.sub (local.get $n) (i32.const 1)) (local.get $env) (local.get $n)))))

  (func $ok (param $env i64) (param $arg i64)
    (i64.store (i64.const 2056) (local.get $arg)))
  (func $jump (param $env i64) (param $arg i64)
    (call $deep (i32.wrap_i64 (local.get $arg)) (local.get $env)
      (i32.add (i32.wrap_i64 (local.get $arg)) (i32.const 100))))
  ;; A protected call inside a protected call, whose callee jumps to the outer.
  (func $nested_inner (param $env i64) (param $arg i64)
    (drop (call $protected (i32.const 3) (local.get $env))))
  (func $jump_outer (param $env i64) (param $outer i64)
    (call $longjmp (local.get $outer) (i32.const 7)))
  (func $trapper (param $env i64) (param $arg i64)
    unreachable)

  ;; A jump buffer on the shadow stack; its first word is its own address.
  (func $new_env (result i64)
    (local $env i64)
    (global.set $sp (local.tee $env (i64.sub (global.get $sp) (i64.const 16))))
    (i64.store (local.get $env) (local.get $env))
    (local.get $env))

  ;; protected(f, arg): 0 if table entry f returned, else the longjmp value;
  ;; a longjmp to another buffer goes on (throw again), as in emscripten.
  (func $protected (export "protected") (param $f i32) (param $arg i64) (result i32)
    (local $sp i64) (local $env i64) (local $p i64)
    (local.set $sp (global.get $sp))
    (local.set $env (call $new_env))
    try (result i32)
      local.get $env
      local.get $arg
      local.get $f
      call_indirect (type $cb)
      i32.const 0
    catch $c_longjmp
      local.set $p
      (global.set $sp (local.get $sp))
      (if (i64.ne (i64.load (i64.load (local.get $p))) (local.get $env))
        (then
          (i32.store (i64.const 2064) (i32.add (i32.load (i64.const 2064)) (i32.const 1)))
          (throw $c_longjmp (local.get $p))))
      (i32.load offset=8 (local.get $p))
    end
    (global.set $sp (local.get $sp)))

  ;; Two setjmp sites in one function, each around a direct call.
  (func (export "two_sites") (param $a i32) (param $b i32) (result i32)
    (local $env i64) (local $first i32)
    (local.set $env (call $new_env))
    try (result i32)
      (call $maybe_jump (local.get $env) (local.get $a))
      i32.const 0
    catch $c_longjmp
      i32.load offset=8
    end
    local.set $first
    try (result i32)
      (call $maybe_jump (local.get $env) (local.get $b))
      i32.const 0
    catch $c_longjmp
      i32.load offset=8
    end
    (i32.add (i32.mul (local.get $first) (i32.const 1000)))
    (global.set $sp (i64.add (global.get $sp) (i64.const 16))))

  ;; A catch that rethrows to an outer try; counts the catch at 2068.
  (func (export "rethrow") (param $n i32) (result i32)
    try (result i32)
      try
        (call $maybe_jump (call $new_env) (local.get $n))
      catch $c_longjmp
        drop
        (i32.store (i64.const 2068) (i32.add (i32.load (i64.const 2068)) (i32.const 1)))
        rethrow 0
      end
      i32.const 0
    catch_all
      ;; (WAMR 2.4.3's interpreter loses the payload of a rethrown exception,
      ;; so the outer handler does not read it.)
      i32.const 10000
    end
    (global.set $sp (i64.add (global.get $sp) (i64.const 16))))

  ;; An inner try whose exceptions skip its own catch (delegate).
  (func (export "delegate") (param $n i32) (result i32)
    try $outer (result i32)
      try
        try
          (call $maybe_jump (call $new_env) (local.get $n))
        delegate $outer
      catch_all
        (i32.store (i64.const 2072) (i32.const 1))
      end
      i32.const 0
    catch $c_longjmp
      i32.load offset=8
    end
    (global.set $sp (i64.add (global.get $sp) (i64.const 16))))

  ;; A longjmp with no setjmp around it.
  (func (export "uncaught") (param $n i32) (result i32)
    (call $maybe_jump (i64.const 8) (local.get $n))
    (local.get $n))

  ;; n protected calls that each longjmp through depth + 1 frames (make
  ;; bench); returns the sum of the longjmp values.
  (func (export "longjmps") (param $n i32) (param $depth i64) (result i32)
    (local $sum i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $sum (i32.add (local.get $sum) (call $protected (i32.const 1) (local.get $depth))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $sum))

  (func (export "counter") (param $at i64) (result i32)
    (i32.load (local.get $at)))
  (func (export "stack_pointer") (result i64)
    (global.get $sp)))
