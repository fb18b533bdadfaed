;; The module `make bench` measures (erlang/hb_beamr_bench.erl) and the
;; native/wasmtime comparison runs (native/tools/hb_beamr_bench_native):
;;   noop()                  the cheapest possible call
;;   mix(n) -> i64           n rounds of xorshift64* from a fixed seed
;;   fnv1a(len, rounds) -> i32
;;                           FNV-1a over the first len bytes of memory, rounds
;;                           times (memory-bound: every byte is a checked load)
;;   import_loop(n) -> i32   calls env.tick n times, summing its answers
;;   grow(pages) -> i32      memory.grow, for the memory I/O figures
(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1 2048)
  (func (export "noop"))
  (func (export "mix") (param $n i32) (result i64)
    (local $x i64)
    (local.set $x (i64.const 88172645463325252))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 12))))
        (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 25))))
        (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 27))))
        (local.set $x (i64.mul (local.get $x) (i64.const 2685821657736338717)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $x))
  (func (export "fnv1a") (param $len i32) (param $rounds i32) (result i32)
    (local $hash i32)
    (local $i i32)
    (local.set $hash (i32.const 0x811c9dc5))
    (block $done
      (loop $round
        (br_if $done (i32.eqz (local.get $rounds)))
        (local.set $i (i32.const 0))
        (block $end
          (loop $byte
            (br_if $end (i32.ge_u (local.get $i) (local.get $len)))
            (local.set $hash
              (i32.mul
                (i32.xor (local.get $hash) (i32.load8_u (local.get $i)))
                (i32.const 0x01000193)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $byte)))
        (local.set $rounds (i32.sub (local.get $rounds) (i32.const 1)))
        (br $round)))
    (local.get $hash))
  (func (export "import_loop") (param $n i32) (result i32)
    (local $sum i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $sum (i32.add (local.get $sum) (call $tick (local.get $n))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $sum))
  (func (export "grow") (param $pages i32) (result i32)
    (memory.grow (local.get $pages))))
