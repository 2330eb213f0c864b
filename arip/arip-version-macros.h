/* arip-version-macros.h: symbol visibility for the public API
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (ARIP_INSIDE) && !defined (ARIP_COMPILATION)
# error "Only <arip.h> can be included directly."
#endif

#include <glib.h>

#if defined (ARIP_COMPILATION) && defined (__GNUC__)
# define _ARIP_EXTERN __attribute__((visibility ("default"))) extern
#else
# define _ARIP_EXTERN extern
#endif

#define ARIP_AVAILABLE_IN_ALL _ARIP_EXTERN
#define ARIP_AVAILABLE_IN_1_0 _ARIP_EXTERN
