//! The atoms of the compiler NIF's terms (a leaf: the root and `worker`
//! both use them).

rustler::atoms! {
    ok,
    error,
    host,
    generic,
    invalid_wasm,
    compile_failed,
    invalid_option,
    hb_beamr_compiled,
    thread_spawn_failed,
}
