/* hb_beamr: WAMR's console output (os_printf) is routed here, through
 * -DBH_VPRINTF, and dropped: inside the BEAM, stdout belongs to the node.
 * Errors reach Erlang as values instead. */
#ifndef HB_QUIET_H
#define HB_QUIET_H
#include <stdarg.h>
#ifdef __cplusplus
extern "C" {
#endif
int hb_beamr_wamr_vprintf(const char *format, va_list ap);
#ifdef __cplusplus
}
#endif
#endif
