/* arip-channel-private.h: frames on the parent <-> worker socket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A channel sends and receives the frames of arip-frame-private.h on a
 * socket: without blocking in the parent's main context, and with the two
 * *_sync() calls a worker uses around its main loop.
 */
#pragma once

#include "arip-frame-private.h"

G_BEGIN_DECLS

typedef struct _AripChannel AripChannel;

/* Called for each complete frame, in order. The frame is borrowed. */
typedef void (*AripChannelFrameFunc)  (AripChannel  *channel,
                                       AripFrame    *frame,
                                       gpointer      user_data);
/* Called once when reading ends: @error is NULL on a clean EOF. */
typedef void (*AripChannelClosedFunc) (AripChannel  *channel,
                                       const GError *error,
                                       gpointer      user_data);

/* Takes ownership of @fd, a connected AF_UNIX stream socket. */
AripChannel *arip_channel_new            (gint                   fd,
                                          GError               **error);
AripChannel *arip_channel_ref            (AripChannel           *self);
void         arip_channel_unref          (AripChannel           *self);
gint         arip_channel_get_fd         (AripChannel           *self);
/* Read asynchronously in @context (nullable: thread default). */
void         arip_channel_start_reading  (AripChannel           *self,
                                          GMainContext          *context,
                                          AripChannelFrameFunc   frame_func,
                                          AripChannelClosedFunc  closed_func,
                                          gpointer               user_data);
typedef void (*AripChannelDrainedFunc) (AripChannel  *channel,
                                        gpointer      user_data);
/* Once the peer is known to be dead: reads what it wrote before, at most
 * @max_bytes (so that a process still holding the other end cannot keep
 * us reading), hands out the frames, and calls @done once, maybe before
 * this returns (later only while a large value is being checked).
 * Afterwards the channel no longer reads on its own. */
void         arip_channel_drain          (AripChannel           *self,
                                          gsize                  max_bytes,
                                          AripChannelDrainedFunc done,
                                          gpointer               user_data);
/* Ends a drain under way before returning: what is left is read and
 * handed out at once (a large value still being checked is given up). */
void         arip_channel_drain_now      (AripChannel           *self);
/* The most descriptors one frame may carry here (default
 * ARIP_FRAME_MAX_FDS), and one that is no result (a memfd not counted): the kernel discards any beyond, none is ever
 * installed in this process, and the channel fails with INVALID_DATA. */
void         arip_channel_set_max_fds    (AripChannel           *self,
                                          guint                  max_fds,
                                          guint                  max_other_fds);
/* Sends a RESULT or MESSAGE frame with @value (sunk), or a CALL frame:
 * in a sealed memfd when the value is large. */
gboolean     arip_channel_send_value     (AripChannel           *self,
                                          AripFrameKind          kind,
                                          GVariant              *value,
                                          GError               **error);
gboolean     arip_channel_send_call      (AripChannel           *self,
                                          const char            *function,
                                          GVariant              *args,
                                          GError               **error);
/* The same, with descriptors that `h` handles in the value index (a
 * memfd, when one is used, goes after them and the reader takes it off). */
gboolean     arip_channel_send_value_with_fds (AripChannel      *self,
                                          AripFrameKind          kind,
                                          GVariant              *value,
                                          GUnixFDList           *fds,
                                          GError               **error);
gboolean     arip_channel_send_call_with_fds (AripChannel       *self,
                                          const char            *function,
                                          GVariant              *args,
                                          GUnixFDList           *fds,
                                          GError               **error);
/* FALSE with ARIP_ERROR_INVALID_DATA if an `h` in @value indexes no
 * descriptor of @fds (nullable: none). */
gboolean     arip_variant_check_handles  (GVariant              *value,
                                          GUnixFDList           *fds,
                                          GError               **error);
/* Bytes queued for writing that the socket did not take yet, and those of
 * messages sent in memfds that the peer did not say it handled. */
gsize        arip_channel_get_queued_bytes (AripChannel         *self);
/* The peer handled a message of @size bytes that came in a memfd; FALSE
 * if no such bytes were in flight. */
gboolean     arip_channel_consumed       (AripChannel           *self,
                                          guint64                size);
/* Queues a frame; writing happens without blocking, from the context given
 * to start_reading (or at once if the socket has room). @payload is sunk. */
gboolean     arip_channel_send           (AripChannel           *self,
                                          AripFrameKind          kind,
                                          GVariant              *payload,
                                          GUnixFDList           *fds,
                                          GError               **error);
/* Queues an encoded frame (consumed); see arip_channel_send(). */
gboolean     arip_channel_send_bytes     (AripChannel           *self,
                                          GBytes                *frame,
                                          GUnixFDList           *fds,
                                          GError               **error);
/* With sync writes, send() only queues and never waits in the main
 * context: the caller flushes with flush_sync(), which sends what was
 * queued together (the worker, which may send from any thread). */
void         arip_channel_set_sync_writes (AripChannel          *self,
                                           gboolean              sync_writes);
/* Blocks until every queued frame is written. */
gboolean     arip_channel_flush_sync     (AripChannel           *self,
                                          GError               **error);
/* For a channel that the caller watches itself (no start_reading()):
 * the functions to hand frames to and to report the end to. */
void         arip_channel_set_handlers   (AripChannel           *self,
                                          AripChannelFrameFunc   frame_func,
                                          AripChannelClosedFunc  closed_func,
                                          gpointer               user_data);
/* Reads what the socket holds without blocking and hands out every
 * complete frame (large values are checked inline). FALSE once reading
 * has ended (the closed function was called). */
gboolean     arip_channel_read_nowait    (AripChannel           *self);
/* Hands out the complete frames already read (by another reader), with
 * no system call. FALSE once reading has ended. */
gboolean     arip_channel_dispatch_buffered (AripChannel        *self);
/* Writes what was queued (with sync writes) as far as the socket takes
 * it, without blocking: TRUE if nothing is left. FALSE with @error
 * G_IO_ERROR_WOULD_BLOCK if something is left, another error if the peer
 * is gone. */
gboolean     arip_channel_flush_nowait   (AripChannel           *self,
                                          GError               **error);
/* Blocks until one frame is read (worker side, before its main loop). */
AripFrame   *arip_channel_receive_sync   (AripChannel           *self,
                                          GError               **error);
/* Stops reading and writing and closes the socket; no callback is called
 * after this returns. */
void         arip_channel_close          (AripChannel           *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AripChannel, arip_channel_unref)

G_END_DECLS
