;; A module that imports a global: WAMR cannot link it (see the lifecycle tests).
(module
  (import "host" "g" (global $g i32))
  (func (export "get") (result i32) (global.get $g)))
