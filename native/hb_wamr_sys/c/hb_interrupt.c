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
