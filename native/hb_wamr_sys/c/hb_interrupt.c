/* hb_beamr: stopping a running call from another thread (timeouts, stop/1).
 *
 * AOT code is stopped with wasm_runtime_terminate: an exception plus the
 * terminate flag, which the generated code checks at loop back-edges and
 * after calls. The classic interpreter built with exception handling must
 * not see an exception appear while a callee is running: on the callee's
 * normal return it would take it for a thrown WebAssembly exception and read
 * a tag index that is not there. So the interpreter gets the terminate flag
 * alone: at its next check it returns from every WebAssembly frame at once,
 * and hb_beamr reports the call as interrupted. */
#include "hb_quiet.h"
#include "wasm_exec_env.h"
#include "wasm_export.h"
#include "wasm_suspend_flags.h"

typedef void (*hb_beamr_instantiation_fn)(void *ctx, wasm_exec_env_t exec_env,
                                          wasm_module_inst_t module_inst);

void
hb_beamr_interrupt(wasm_exec_env_t exec_env, wasm_module_inst_t module_inst)
{
    WASMExecEnv *env = (WASMExecEnv *)exec_env;
    if (wasm_runtime_get_module_package_type(
            wasm_runtime_get_module(module_inst))
        == Wasm_Module_AoT) {
        wasm_runtime_terminate(module_inst);
        return;
    }
    os_mutex_lock(&env->wait_lock);
    WASM_SUSPEND_FLAGS_FETCH_OR(env->suspend_flags,
                                WASM_SUSPEND_FLAG_TERMINATE);
    os_mutex_unlock(&env->wait_lock);
}

void
hb_beamr_clear_interrupt(wasm_exec_env_t exec_env)
{
    WASMExecEnv *env = (WASMExecEnv *)exec_env;
    os_mutex_lock(&env->wait_lock);
    WASM_SUSPEND_FLAGS_FETCH_AND(env->suspend_flags,
                                 ~WASM_SUSPEND_FLAG_TERMINATE);
    os_mutex_unlock(&env->wait_lock);
}

/* The start function and constructors run inside instantiation, on an exec
 * env WAMR creates for them (build-time patch, hb_wamr_build/src/patch.rs).
 * WAMR calls this hook with that exec env before they run and with NULL
 * when they are over; the instance thread installs a callback that makes
 * the exec env known to whoever may interrupt it. Per thread: instances
 * are instantiated on their own threads. */
static __thread hb_beamr_instantiation_fn hb_hook;
static __thread void *hb_hook_ctx;

void
hb_beamr_set_instantiation_hook(hb_beamr_instantiation_fn hook, void *ctx)
{
    hb_hook = hook;
    hb_hook_ctx = ctx;
}

void
hb_beamr_instantiation_hook(WASMExecEnv *exec_env)
{
    if (hb_hook)
        hb_hook(hb_hook_ctx, exec_env, exec_env ? exec_env->module_inst : NULL);
}
