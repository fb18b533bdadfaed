// hb_beamr: tells whether LLVM knows a CPU name for the host's target. LLVM
// itself would print a warning and, for some names, abort the whole process
// ("64-bit code requested on a subtarget that doesn't support it"), which
// inside the BEAM would take the node down: names are checked first.
#include <cstdio>
#include <memory>
#include <string>

#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"

extern "C" int
hb_beamr_cpu_is_valid(const char *cpu)
{
    std::string triple = llvm::sys::getDefaultTargetTriple();
    std::string error;
    const llvm::Target *target =
        llvm::TargetRegistry::lookupTarget(triple, error);
    if (!target)
        return 0;
    std::unique_ptr<llvm::MCSubtargetInfo> generic(
        target->createMCSubtargetInfo(triple, "", ""));
    if (!generic || !generic->isCPUStringValid(cpu))
        return 0;
    // A 32-bit-only x86 CPU is a valid name, and an abort for 64-bit code.
    if (llvm::Triple(triple).getArch() == llvm::Triple::x86_64) {
        std::unique_ptr<llvm::MCSubtargetInfo> chosen(
            target->createMCSubtargetInfo(triple, cpu, ""));
        if (!chosen || !chosen->checkFeatures("+64bit"))
            return 0;
    }
    return 1;
}

// The features a CPU name implies, as "+name,+name,..." (for the target tag
// of code compiled for it). Returns 0 if the CPU is unknown.
extern "C" int
hb_beamr_cpu_features(const char *cpu, char *out, unsigned out_size)
{
    std::string triple = llvm::sys::getDefaultTargetTriple();
    std::string error;
    const llvm::Target *target =
        llvm::TargetRegistry::lookupTarget(triple, error);
    if (!target || out_size == 0)
        return 0;
    std::unique_ptr<llvm::MCSubtargetInfo> info(
        target->createMCSubtargetInfo(triple, cpu, ""));
    if (!info)
        return 0;
    std::string features;
    for (const llvm::SubtargetFeatureKV &kv : info->getAllProcessorFeatures()) {
        if (info->getFeatureBits().test(kv.Value)) {
            if (!features.empty())
                features += ",";
            features += "+";
            features += kv.Key;
        }
    }
    snprintf(out, out_size, "%s", features.c_str());
    return 1;
}
