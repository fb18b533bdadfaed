;; Identity functions per type, multi-value results, and mixed signatures.
(module
  (func (export "id_i32") (param i32) (result i32) (local.get 0))
  (func (export "id_i64") (param i64) (result i64) (local.get 0))
  (func (export "id_f32") (param f32) (result f32) (local.get 0))
  (func (export "id_f64") (param f64) (result f64) (local.get 0))
  (func (export "swap") (param i32 i64) (result i64 i32) (local.get 1) (local.get 0))
  (func (export "four") (result i32 i64 f32 f64)
    (i32.const -1) (i64.const -9223372036854775808) (f32.const 1.5) (f64.const -2.25))
  (func (export "mix") (param i32 i64 f32 f64) (result f64)
    (f64.add
      (f64.add (f64.convert_i32_s (local.get 0)) (f64.convert_i64_s (local.get 1)))
      (f64.add (f64.promote_f32 (local.get 2)) (local.get 3))))
  (func (export "nothing"))
  (func (export "inf") (result f64) (f64.div (f64.const 1) (f64.const 0)))
  (func (export "nan") (result f64) (f64.div (f64.const 0) (f64.const 0))))
