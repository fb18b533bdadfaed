;; Exception handling hb_beamr cannot rewrite for AOT (a tag carrying an f64):
;; compile/1 refuses it, the interpreter runs it.
(module
  (tag $t (param f64))
  (func (export "run") (result f64)
    try (result f64)
      (throw $t (f64.const 1.5))
    catch $t
    end))
