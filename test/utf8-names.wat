;; Names that are valid UTF-8 with a NUL in them, which WAMR 2.4.3 refused
;; ("invalid UTF-8 encoding"): a custom section's name and an export name
;; (next to the empty name, which it must not be confused with).
(module
  (@custom "\00custom\00" "payload")
  (func (export "") (result i32) (i32.const 1))
  (func (export "\00") (result i32) (i32.const 2))
  (func (export "a\00b") (result i32) (i32.const 3)))
