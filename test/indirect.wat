;; An exported function table, for indirect calls by index.
(module
  (table (export "__indirect_function_table") 4 funcref)
  (elem (i32.const 1) $double $sum3 $pi)
  (func $double (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
  (func $sum3 (param i64 i64 i64) (result i64)
    (i64.add (local.get 0) (i64.add (local.get 1) (local.get 2))))
  (func $pi (result f64) (f64.const 3.14159)))
