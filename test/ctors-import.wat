;; emscripten-style constructors that call an import during instantiation
;; (WAMR runs an exported __wasm_call_ctors inside instantiation): the import
;; function writes to memory with hb_beamr_io, then answers a value.
(module
  (import "env" "environ_size" (func $environ_size (result i32)))
  (memory (export "memory") 1)
  (global $size (mut i32) (i32.const 0))
  (global $first (mut i32) (i32.const 0))
  (func (export "__wasm_call_ctors")
    (global.set $size (call $environ_size))
    (global.set $first (i32.load8_u (i32.const 16))))
  (func (export "size") (result i32) (global.get $size))
  (func (export "first") (result i32) (global.get $first)))
