/* arip.h: run a function in an isolated child process from a GLib main loop
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#define ARIP_INSIDE

#include <gio/gio.h>

#include "arip-version.h"
#include "arip-version-macros.h"
#include "arip-types.h"
#include "arip-enum-types.h"
#include "arip-error.h"
#include "arip-call.h"
#include "arip-init.h"
#include "arip-launcher.h"
#include "arip-limiter.h"
#include "arip-memfd.h"
#include "arip-pool.h"
#include "arip-process.h"
#include "arip-result-queue.h"
#include "arip-run.h"
#include "arip-shared.h"
#include "arip-queue.h"
#include "arip-lock.h"
#include "arip-event.h"
#include "arip-semaphore.h"
#include "arip-condition.h"
#include "arip-barrier.h"
#include "arip-shared-memory.h"
#include "arip-shared-dict.h"

#undef ARIP_INSIDE
