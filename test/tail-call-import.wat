;; Tail calls to an import. From a function the host calls, WAMR 2.4.3's
;; interpreter would crash on the way back (hb_beamr refuses it with a trap);
;; one call deeper it works; an exported import is called directly.
(module
  (import "env" "answer" (func $answer (result i32)))
  (func $inner (result i32) (return_call $answer))
  (func (export "tail") (result i32) (return_call $answer))
  (func (export "nested") (result i32) (i32.add (call $inner) (i32.const 1)))
  (export "reexported" (func $answer)))
