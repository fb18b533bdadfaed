/* hb_beamr: what LLVM's target machine in a WAMR compile context was made
 * with. A file of its own: aot_llvm.h (AOTCompContext) and aot_export.h
 * (the public compiler API, used by hb_compile.c) declare the same names
 * differently. */
#include <stdio.h>

#include "aot_llvm.h"

void
hb_beamr_comp_ctx_target(AOTCompContext *comp_ctx, char *cpu,
                         uint32_t cpu_size, char *features,
                         uint32_t features_size)
{
    char *tm_cpu = LLVMGetTargetMachineCPU(comp_ctx->target_machine);
    char *tm_fs = LLVMGetTargetMachineFeatureString(comp_ctx->target_machine);
    snprintf(cpu, cpu_size, "%s", tm_cpu ? tm_cpu : "");
    snprintf(features, features_size, "%s", tm_fs ? tm_fs : "");
    if (tm_cpu)
        LLVMDisposeMessage(tm_cpu);
    if (tm_fs)
        LLVMDisposeMessage(tm_fs);
}
