/* hb_beamr: every global of an instance, exported or not, for snapshots.
 *
 * WAMR's API reaches exported globals only; C code compiled to WebAssembly
 * keeps its stack pointer in a mutable global that is usually not exported,
 * so a snapshot without it does not restore. These helpers walk the
 * instance's own global table (interpreter) or its module's (AOT). */
#include "hb_quiet.h"
#include "wasm_export.h"
#include "wasm_runtime.h"
#include "aot_runtime.h"

/* How many globals the instance has, imported ones included. */
uint32_t
hb_beamr_global_count(wasm_module_inst_t module_inst)
{
    WASMModuleInstanceCommon *inst = (WASMModuleInstanceCommon *)module_inst;
    if (!inst)
        return 0;
    if (inst->module_type == Wasm_Module_Bytecode)
        return ((WASMModuleInstance *)inst)->e->global_count;
    if (inst->module_type == Wasm_Module_AoT) {
        AOTModule *module = (AOTModule *)((AOTModuleInstance *)inst)->module;
        return module->import_global_count + module->global_count;
    }
    return 0;
}

/* Global `index`: its value type (VALUE_TYPE_*), whether it is mutable, and
 * where its value lives. Returns 0 past the count. */
int
hb_beamr_global_at(wasm_module_inst_t module_inst, uint32_t index,
                   uint8_t *val_type, uint8_t *is_mutable, void **data)
{
    WASMModuleInstanceCommon *inst = (WASMModuleInstanceCommon *)module_inst;
    if (!inst || index >= hb_beamr_global_count(module_inst))
        return 0;
    if (inst->module_type == Wasm_Module_Bytecode) {
        WASMModuleInstance *wi = (WASMModuleInstance *)inst;
        WASMGlobalInstance *global = &wi->e->globals[index];
        *val_type = global->type;
        *is_mutable = global->is_mutable;
        *data = wi->global_data + global->data_offset;
        return 1;
    }
    else {
        AOTModuleInstance *ai = (AOTModuleInstance *)inst;
        AOTModule *module = (AOTModule *)ai->module;
        WASMGlobalType *type;
        uint32 offset;
        if (index < module->import_global_count) {
            type = &module->import_globals[index].type;
            offset = module->import_globals[index].data_offset;
        }
        else {
            AOTGlobal *global =
                &module->globals[index - module->import_global_count];
            type = &global->type;
            offset = global->data_offset;
        }
        *val_type = type->val_type;
        *is_mutable = type->is_mutable;
        *data = ai->global_data + offset;
        return 1;
    }
}
