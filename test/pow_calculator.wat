;; pow(base, power) multiplies through an imported function, so every
;; multiplication is a round trip to the caller's ImportFun.
(module
  (import "my_lib" "mul" (func $mul (param i32 i32) (result i32)))
  (func (export "pow") (param $base i32) (param $power i32) (result i32)
    (local $acc i32)
    (local.set $acc (i32.const 1))
    (block $done
      (loop $next
        (br_if $done (i32.le_s (local.get $power) (i32.const 0)))
        (local.set $acc (call $mul (local.get $acc) (local.get $base)))
        (local.set $power (i32.sub (local.get $power) (i32.const 1)))
        (br $next)))
    (local.get $acc)))
