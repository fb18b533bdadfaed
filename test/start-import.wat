;; A start function that calls an import: there is no call (and no ImportFun)
;; to serve it yet, so instantiation fails with a clear reason.
(module
  (import "env" "hello" (func $hello))
  (func $init (call $hello))
  (start $init))
