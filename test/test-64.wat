;; memory64: fac plus loads and stores through 64-bit addresses.
(module
  (memory (export "memory") i64 1)
  (data (i64.const 16) "memory64 says hi")
  (func $fac (export "fac") (param $n f64) (result f64)
    (if (result f64) (f64.lt (local.get $n) (f64.const 1))
      (then (f64.const 1))
      (else
        (f64.mul (local.get $n)
                 (call $fac (f64.sub (local.get $n) (f64.const 1)))))))
  (func (export "load8") (param $addr i64) (result i32)
    (i32.load8_u (local.get $addr)))
  (func (export "store8") (param $addr i64) (param $v i32)
    (i32.store8 (local.get $addr) (local.get $v)))
  (func (export "grow") (param $pages i64) (result i64)
    (memory.grow (local.get $pages))))
