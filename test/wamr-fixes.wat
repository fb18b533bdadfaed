;; What hb_beamr's WAMR build fixes (found by `make spec`):
;; - call_indirect on a table other than table 0 (the interpreter used table 0);
;; - a module exporting __heap_base and never growing its memory keeps all of
;;   it (WAMR shrank the memory to the heap base).
(module
  (type $ret (func (result i32)))
  (func $seven (result i32) (i32.const 7))
  (func $nine (result i32) (i32.const 9))
  (table $t0 funcref (elem $seven))
  (table $t1 funcref (elem $nine))
  (func (export "second_table") (result i32)
    (call_indirect $t1 (type $ret) (i32.const 0)))
  (memory 1 1)
  (global (export "__data_end") i32 (i32.const 100))
  (global (export "__stack_top") i32 (i32.const 100))
  (global (export "__heap_base") i32 (i32.const 100))
  (func (export "load") (param i32) (result i32)
    (i32.load8_u (local.get 0))))
