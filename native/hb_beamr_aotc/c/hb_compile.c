#include "hb_compile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/TargetMachine.h>

#include "aot_export.h"
#include "wasm_export.h"

/* hb_comp_target.c: reads the target machine out of a compile context
 * (aot_llvm.h, which cannot be included beside aot_export.h). */
void hb_beamr_comp_ctx_target(aot_comp_context_t comp_ctx, char *cpu,
                              uint32_t cpu_size, char *features,
                              uint32_t features_size);

/* hb_wamr_build's patch/fuel_register.rs (the patched aot_emit_variable.c):
 * the global the compile keeps in a register and the function that waits
 * for fuel, -1 for none. */
void hb_aot_set_fuel(int64_t global, int64_t charge_function);

static int initialised = 0;
/* What LLVM's target machine was made with, in the last compile. */
static char last_cpu[128];
static char last_features[8192];

static int
init_once(char *err, uint32_t err_size)
{
    if (initialised)
        return 1;
    if (!wasm_runtime_init()) {
        snprintf(err, err_size, "wasm_runtime_init failed");
        return 0;
    }
    wasm_runtime_set_log_level(WASM_LOG_LEVEL_FATAL);
    if (!aot_compiler_init()) {
        snprintf(err, err_size, "LLVM initialisation failed");
        return 0;
    }
    initialised = 1;
    return 1;
}

static void
last_error(char *err, uint32_t err_size, const char *what)
{
    const char *detail = aot_get_last_error();
    snprintf(err, err_size, "%s: %s", what,
             detail && detail[0] ? detail : "unknown error");
}

int
hb_beamr_aot_compile(const uint8_t *wasm, uint32_t wasm_size,
                     const hb_compile_options *options, uint8_t **out,
                     uint32_t *out_size, char *err, uint32_t err_size)
{
    uint8_t *copy = NULL, *aot = NULL;
    wasm_module_t module = NULL;
    aot_comp_data_t comp_data = NULL;
    aot_comp_context_t comp_ctx = NULL;
    AOTCompOption option;
    uint32_t aot_size = 0;
    char load_error[128] = { 0 };
    int ok = 0;

    *out = NULL;
    *out_size = 0;
    if (!init_once(err, err_size))
        return 0;

    /* The loader may write into its buffer. */
    if (!(copy = malloc(wasm_size ? wasm_size : 1))) {
        snprintf(err, err_size, "out of memory");
        return 0;
    }
    memcpy(copy, wasm, wasm_size);

    if (!(module = wasm_runtime_load(copy, wasm_size, load_error,
                                     sizeof(load_error)))) {
        snprintf(err, err_size, "%s", load_error);
        goto done;
    }

    memset(&option, 0, sizeof(option));
    option.opt_level = options->opt_level;
    option.size_level = options->size_level;
    option.output_format = AOT_FORMAT_FILE;
    option.target_arch = (char *)options->target_arch;
    option.target_cpu = (char *)options->target_cpu;
    /* Never left to the CPU name: hypervisors hide features a name implies
     * (AVX-512 on a znver4 VM), and LLVM would use them. */
    option.cpu_features = (char *)options->cpu_features;
    /* The runtime has no guard pages and no signal handlers: memory and
     * native-stack bounds are checked by the generated code. */
    option.bounds_checks = options->bounds_checks ? 1 : 0;
    option.stack_bounds_checks = 1;
    /* What hb_beamr's runtime supports (see hb_wamr_build). */
    option.enable_bulk_memory = true;
    option.enable_bulk_memory_opt = true;
    option.enable_ref_types = true;
    option.enable_call_indirect_overlong = true;
    option.enable_tail_call = true;
    option.enable_aux_stack_check = true;
    option.enable_simd = false;
    /* Suspend-flag checks in loops, so that a timeout or stop/1 can end a
     * running call (the runtime has the thread manager). */
    option.enable_thread_mgr = true;
    option.enable_gc = false;
    option.aux_stack_frame_type = AOT_STACK_FRAME_OFF;
    aot_call_stack_features_init_default(&option.call_stack_features);

    if (!(comp_data = aot_create_comp_data(module, option.target_arch,
                                           false))) {
        last_error(err, err_size, "cannot prepare the module");
        goto done;
    }
    if (!(comp_ctx = aot_create_comp_context(comp_data, &option))) {
        last_error(err, err_size, "cannot create the compiler");
        goto done;
    }
    hb_beamr_comp_ctx_target(comp_ctx, last_cpu, sizeof(last_cpu),
                             last_features, sizeof(last_features));
    hb_aot_set_fuel(options->fuel_global, options->charge_function);
    if (!aot_compile_wasm(comp_ctx)) {
        hb_aot_set_fuel(-1, -1);
        last_error(err, err_size, "compilation failed");
        goto done;
    }
    hb_aot_set_fuel(-1, -1);
    if (!(aot = aot_emit_aot_file_buf(comp_ctx, comp_data, &aot_size))) {
        last_error(err, err_size, "cannot emit the AOT file");
        goto done;
    }
    *out = aot;
    *out_size = aot_size;
    ok = 1;

done:
    if (comp_ctx)
        aot_destroy_comp_context(comp_ctx);
    if (comp_data)
        aot_destroy_comp_data(comp_data);
    if (module)
        wasm_runtime_unload(module);
    free(copy);
    return ok;
}

void
hb_beamr_last_target(char *cpu, uint32_t cpu_size, char *features,
                     uint32_t features_size)
{
    snprintf(cpu, cpu_size, "%s", last_cpu);
    snprintf(features, features_size, "%s", last_features);
}

void
hb_beamr_init_targets(void)
{
    char err[128];
    (void)init_once(err, sizeof(err));
}

void
hb_beamr_aot_free(uint8_t *aot)
{
    if (aot)
        wasm_runtime_free(aot); /* aot_emit_aot_file_buf allocates with it */
}

int
hb_beamr_host_cpu(char *name, uint32_t name_size, char *features,
                  uint32_t features_size)
{
    char *cpu = LLVMGetHostCPUName();
    char *feats = LLVMGetHostCPUFeatures();
    int ok = cpu && feats;
    if (ok) {
        snprintf(name, name_size, "%s", cpu);
        snprintf(features, features_size, "%s", feats);
    }
    if (cpu)
        LLVMDisposeMessage(cpu);
    if (feats)
        LLVMDisposeMessage(feats);
    return ok;
}
