/* hb_beamr's C shim over WAMR's AOT compiler API (aot_export.h): one call
 * from WebAssembly bytes to an AOT file, with the options hb_beamr exposes. */
#ifndef HB_COMPILE_H
#define HB_COMPILE_H
#include <stdint.h>

typedef struct {
    uint32_t opt_level;   /* 0..3 */
    uint32_t size_level;  /* 0..3 */
    int bounds_checks;    /* 1: software memory bounds checks */
    const char *target_arch; /* NULL: the host */
    const char *target_cpu;  /* the LLVM CPU name (hb_beamr always sets it) */
    const char *cpu_features; /* the LLVM feature string, as given */
    /* A metered module's fuel counter (its global index), kept in a register
     * by the generated code (hb_wamr_build's patch/fuel_register.rs); -1:
     * none. */
    int64_t fuel_global;
    /* Its function that waits for fuel ($charge), marked cold; -1: none. */
    int64_t charge_function;
} hb_compile_options;

/* Compiles; on success *out (free it with hb_beamr_aot_free) and *out_size.
 * On failure returns 0 and writes a message into err. Not reentrant: the
 * caller serialises calls (WAMR keeps its last error in a global). */
int hb_beamr_aot_compile(const uint8_t *wasm, uint32_t wasm_size,
                         const hb_compile_options *options, uint8_t **out,
                         uint32_t *out_size, char *err, uint32_t err_size);

void hb_beamr_aot_free(uint8_t *aot);

/* Initialises WAMR and LLVM's targets once (also done by the first compile). */
void hb_beamr_init_targets(void);

/* Whether LLVM knows `cpu` for the host's target (hb_cpu_check.cpp). */
int hb_beamr_cpu_is_valid(const char *cpu);

/* The features `cpu` implies, "+a,+b" (hb_cpu_check.cpp); 0 if unknown. */
int hb_beamr_cpu_features(const char *cpu, char *out, unsigned out_size);

/* The CPU name and feature string of the target machine the last
 * successful hb_beamr_aot_compile made: what LLVM compiled for, read back
 * from LLVM (tests compare it with the target tag). */
void hb_beamr_last_target(char *cpu, uint32_t cpu_size, char *features,
                          uint32_t features_size);

/* The host's CPU name and features, as LLVM sees them. */
int hb_beamr_host_cpu(char *name, uint32_t name_size, char *features,
                      uint32_t features_size);

#endif
