;; memory.grow on a 64-bit memory by more than UINT32_MAX pages must fail
;; (-1) and grow nothing, in AOT code as in the interpreter (WAMR 2.4.3's
;; AOT compiler grew by the delta's low bits: a build-time patch).
(module
  (memory i64 1)
  (func (export "grow") (param i64) (result i64) (memory.grow (local.get 0)))
  (func (export "pages") (result i64) (memory.size)))
