/* arip-channel.c: GVariant frames on the parent <-> worker socket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Both ends use the same code. Reads and writes never block except in the
 * two *_sync() calls the worker uses before and after its main loop; the
 * parent only reads from a GSocket source in its own main context. The
 * frames themselves are arip-frame.c's.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <glib-unix.h>

#include "arip-channel-private.h"
#include "arip-error.h"
#include "arip-memfd-private.h"

#define MAX_READS_PER_DISPATCH 32
#define MAX_READ_BYTES    (4 * 1024 * 1024)
/* What one main context dispatch of a channel may hand out. */
#define MAX_FRAMES_PER_DISPATCH 256
#define MAX_DISPATCH_US   4000
/* Values from this size up are checked in a thread. */
#define DEFER_CHECK_SIZE  (256 * 1024)

/* ---------------------------------------------------------------------- */
/* The channel                                                            */

typedef struct {
  GBytes      *data;
  gsize        offset;
  GUnixFDList *fds;    /* sent with the first byte */
  gsize        extra;  /* bytes in a memfd that the frame carries */
} OutFrame;

struct _AripChannel {
  gint                   ref_count;
  gint                   fd;          /* -1 once closed */
  AripFrameDecoder      *decoder;
  GMainContext          *context;
  GSource               *in_source;
  GSource               *out_source;
  AripChannelFrameFunc   frame_func;
  AripChannelClosedFunc  closed_func;
  gpointer               user_data;
  GQueue                 out_queue;
  gsize                  out_bytes;      /* queued and not yet written */
  guint64                in_flight;      /* in memfd messages not yet handled */
  gsize                  last_request;   /* bytes the last read asked for */
  gboolean               last_had_fds;   /* descriptors came with it */
  AripFrame             *checking;       /* a large value being checked */
  guint                  closed : 1;
  guint                  reading_done : 1;
  guint                  write_failed : 1;
  guint                  sync_writes : 1;
  guint                  max_fds;
  guint                  draining : 1;
  guint                  drain_now : 1;
  gsize                  drain_left;
  AripChannelDrainedFunc drained_func;
  gpointer               drained_data;
};

static void
out_frame_free (gpointer data)
{
  OutFrame *out = data;

  g_bytes_unref (out->data);
  g_clear_object (&out->fds);
  g_free (out);
}

AripChannel *
arip_channel_new (gint     fd,
                  GError **error)
{
  AripChannel *self;
  struct stat st;
  int domain = 0, type = 0;
  socklen_t len = sizeof (int);

  /* Plain system calls rather than GSocket: a worker starts faster without
   * initializing GIO's networking, and every call saves a little. */
  if (fstat (fd, &st) < 0 || !S_ISSOCK (st.st_mode) ||
      getsockopt (fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX ||
      (len = sizeof (int), getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &len)) < 0 ||
      type != SOCK_STREAM)
    {
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                   _("File descriptor %d is not a Unix stream socket"), fd);
      close (fd);
      return NULL;
    }

  if (!g_unix_set_fd_nonblocking (fd, TRUE, error))
    {
      close (fd);
      return NULL;
    }

  self = g_new0 (AripChannel, 1);
  self->ref_count = 1;
  self->fd = fd;
  self->max_fds = ARIP_FRAME_MAX_FDS;
  self->decoder = arip_frame_decoder_new (ARIP_FRAME_MAX_SIZE);
  arip_frame_decoder_set_keep_payload (self->decoder, FALSE);
  arip_frame_decoder_set_defer_check (self->decoder, DEFER_CHECK_SIZE);
  g_queue_init (&self->out_queue);
  return self;
}

AripChannel *
arip_channel_ref (AripChannel *self)
{
  g_atomic_int_inc (&self->ref_count);
  return self;
}

void
arip_channel_unref (AripChannel *self)
{
  if (!g_atomic_int_dec_and_test (&self->ref_count))
    return;

  arip_channel_close (self);
  g_free (self);
}

gint
arip_channel_get_fd (AripChannel *self)
{
  return self->fd;
}

void
arip_channel_set_max_fds (AripChannel *self,
                          guint        max_fds,
                          guint        max_other_fds)
{
  self->max_fds = MIN (max_fds, (guint) ARIP_FRAME_MAX_FDS);
  if (self->decoder != NULL)
    arip_frame_decoder_set_max_fds (self->decoder, self->max_fds, MIN (max_other_fds, self->max_fds));
}

gsize
arip_channel_get_queued_bytes (AripChannel *self)
{
  return self->out_bytes + (gsize) self->in_flight;
}

gboolean
arip_channel_consumed (AripChannel *self,
                       guint64      size)
{
  if (size > self->in_flight)
    return FALSE;
  self->in_flight -= size;
  return TRUE;
}

static void
set_errno_error (GError     **error,
                 int          saved_errno,
                 const char  *what)
{
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
               "%s: %s", what, g_strerror (saved_errno));
}

/* Waits until the socket is readable or writable. */
static gboolean
wait_for (AripChannel  *self,
          short         events,
          GError      **error)
{
  struct pollfd pfd = { .fd = self->fd, .events = events };

  while (poll (&pfd, 1, -1) < 0)
    {
      if (errno != EINTR)
        {
          set_errno_error (error, errno, "poll");
          return FALSE;
        }
    }
  return TRUE;
}

/* One recvmsg into the decoder, of at most @max bytes (0: as many as fit):
 * > 0 bytes read, 0 at EOF, -1 on error (G_IO_ERROR_WOULD_BLOCK when
 * nothing is there yet). Descriptors that come along are queued in the
 * decoder. */
static gssize
read_once (AripChannel  *self,
           gsize         max,
           GError      **error)
{
  union {
    char buf[CMSG_SPACE (sizeof (int) * ARIP_FRAME_MAX_FDS)];
    struct cmsghdr align;
  } control;
  struct iovec iov;
  struct msghdr msg = { 0 };
  guint n_received = 0;
  gssize n;

  iov.iov_base = arip_frame_decoder_prepare (self->decoder, &iov.iov_len);
  if (iov.iov_base == NULL)
    {
      /* The decoder could not grow; it tells why. */
      AripFrame *frame = NULL;

      if (!arip_frame_decoder_next (self->decoder, &frame, error))
        return -1;
      arip_frame_free (frame);
      g_set_error_literal (error, ARIP_ERROR, ARIP_ERROR_NO_MEMORY, "out of memory");
      return -1;
    }
  /* One read copies at most this much: a large frame comes over
   * several dispatches, and the main context runs in between. */
  iov.iov_len = MIN (iov.iov_len, (gsize) MAX_READ_BYTES);
  if (max > 0)
    iov.iov_len = MIN (iov.iov_len, max);
  self->last_request = iov.iov_len;
  self->last_had_fds = FALSE;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  /* Beyond the room there is, the kernel discards descriptors (and says
   * so with MSG_CTRUNC): no more is ever installed in this process. */
  if (self->max_fds > 0)
    {
      msg.msg_control = control.buf;
      msg.msg_controllen = CMSG_SPACE (sizeof (int) * self->max_fds);
    }

  do
    n = recvmsg (self->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);

  if (n < 0)
    {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "recvmsg: EAGAIN");
      else
        set_errno_error (error, errno, "recvmsg");
      return -1;
    }

  for (struct cmsghdr *c = CMSG_FIRSTHDR (&msg); c != NULL; c = CMSG_NXTHDR (&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      {
        guint n_fds = (c->cmsg_len - CMSG_LEN (0)) / sizeof (int);
        gint fds[ARIP_FRAME_MAX_FDS];

        n_fds = MIN (n_fds, G_N_ELEMENTS (fds));
        memcpy (fds, CMSG_DATA (c), n_fds * sizeof (int));
        n_received += n_fds;
        self->last_had_fds = TRUE;
        arip_frame_decoder_push_fds (self->decoder, fds, n_fds);
      }

  if (msg.msg_flags & MSG_CTRUNC)
    {
      if (n_received < self->max_fds)
        /* The buffer had room: the kernel could not install them. */
        g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                     _("file descriptors the child sent were lost: this process may have "
                       "run out of descriptors (see RLIMIT_NOFILE)"));
      else
        g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                     _("more file descriptors arrived at once than a frame may carry here (%u)"),
                     self->max_fds);
      return -1;
    }

  if (n > 0)
    arip_frame_decoder_commit (self->decoder, n);

  return n;
}

static void
finish_reading (AripChannel  *self,
                const GError *error)
{
  if (self->reading_done)
    return;
  self->reading_done = TRUE;

  if (self->in_source != NULL)
    {
      g_source_destroy (self->in_source);
      g_clear_pointer (&self->in_source, g_source_unref);
    }

  if (!self->closed && self->closed_func != NULL)
    self->closed_func (self, error, self->user_data);
}

typedef enum {
  DISPATCH_NEED_BYTES,   /* every complete frame was handed out */
  DISPATCH_OVER,         /* reading is over */
  DISPATCH_PAUSED,       /* the budget ran out, or a value is being checked */
} DispatchResult;

typedef struct {
  guint  frames;        /* frames left to hand out, 0: no limit */
  gint64 deadline;      /* monotonic µs, 0: none */
} Budget;

static void start_check    (AripChannel *self,
                            AripFrame   *frame);
static void continue_drain (AripChannel *self);

static gboolean
budget_spent (Budget *budget,
              guint   handed_out)
{
  if (budget == NULL)
    return FALSE;
  if (budget->frames > 0 && handed_out >= budget->frames)
    return TRUE;
  /* The clock is cheap, but not free: look every few frames. */
  return budget->deadline > 0 && handed_out % 16 == 0 &&
         g_get_monotonic_time () >= budget->deadline;
}

static void
hand_out (AripChannel *self,
          AripFrame   *frame)
{
  if (self->frame_func != NULL)
    self->frame_func (self, frame, self->user_data);
  arip_frame_free (frame);
}

/* Hands complete frames to the owner, within @budget (NULL: no limit). */
static DispatchResult
dispatch_frames (AripChannel *self,
                 Budget      *budget)
{
  guint handed_out = 0;

  while (!self->closed && !self->reading_done)
    {
      g_autoptr(GError) error = NULL;
      AripFrame *frame = NULL;

      if (self->checking != NULL)
        return DISPATCH_PAUSED;
      if (handed_out > 0 && budget_spent (budget, handed_out))
        return DISPATCH_PAUSED;

      if (!arip_frame_decoder_next (self->decoder, &frame, &error))
        {
          finish_reading (self, error);
          return DISPATCH_OVER;
        }
      if (frame == NULL)
        return DISPATCH_NEED_BYTES;

      if (frame->needs_check && self->context != NULL && !self->drain_now)
        {
          start_check (self, frame);
          return DISPATCH_PAUSED;
        }
      if (frame->needs_check && !arip_frame_check (frame))
        {
          g_autoptr(GError) invalid =
            g_error_new (ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                         _("a %s frame whose value is not in normal form"),
                         arip_frame_kind_to_string (frame->kind));
          arip_frame_free (frame);
          finish_reading (self, invalid);
          return DISPATCH_OVER;
        }

      hand_out (self, frame);
      handed_out++;
    }

  return DISPATCH_OVER;
}

/* Reads and dispatches what is there, at most @max_reads reads (0: until
 * the socket is empty) and @max_bytes bytes (0: no limit), within
 * @budget. */
static DispatchResult
read_available (AripChannel *self,
                guint        max_reads,
                gsize        max_bytes,
                Budget      *budget,
                gsize       *bytes_read)
{
  gsize dummy = 0;
  gsize *total = bytes_read != NULL ? bytes_read : &dummy;
  DispatchResult r;

  /* Frames already buffered come first. */
  r = dispatch_frames (self, budget);
  if (r != DISPATCH_NEED_BYTES)
    return r;

  for (guint i = 0; max_reads == 0 || i < max_reads; i++)
    {
      g_autoptr(GError) error = NULL;
      gssize n;

      if (self->closed || self->reading_done)
        return DISPATCH_OVER;
      if (max_bytes > 0 && *total >= max_bytes)
        return DISPATCH_NEED_BYTES;

      n = read_once (self, max_bytes > 0 ? max_bytes - *total : 0, &error);
      if (n < 0)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            return DISPATCH_NEED_BYTES;
          /* Frames read before the error still count. */
          if (dispatch_frames (self, NULL) != DISPATCH_OVER)
            finish_reading (self, error);
          return DISPATCH_OVER;
        }

      if (n == 0)
        {
          r = dispatch_frames (self, NULL);
          if (r != DISPATCH_NEED_BYTES)
            return r;
          if (arip_frame_decoder_has_partial (self->decoder))
            {
              g_autoptr(GError) truncated =
                g_error_new (ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                             _("the channel was closed in the middle of a frame"));
              finish_reading (self, truncated);
            }
          else
            finish_reading (self, NULL);
          return DISPATCH_OVER;
        }

      *total += (gsize) n;
      r = dispatch_frames (self, budget);
      if (r != DISPATCH_NEED_BYTES)
        return r;

      /* Reading a large frame takes time too. */
      if (budget != NULL && budget->deadline > 0 && g_get_monotonic_time () >= budget->deadline)
        return DISPATCH_PAUSED;

      /* A short read emptied the socket: don't ask again only to hear
       * EAGAIN; the source tells us when more comes. (A read ends after
       * bytes that brought descriptors, whatever follows them: only a
       * reader that comes back when the socket is readable stops
       * there.) */
      if ((gsize) n < self->last_request && (max_reads != 0 || !self->last_had_fds))
        return DISPATCH_NEED_BYTES;
    }

  return DISPATCH_NEED_BYTES;
}

static gboolean on_readable (gint         fd,
                             GIOCondition condition,
                             gpointer     user_data);

static void
watch_input (AripChannel *self)
{
  self->in_source = g_unix_fd_source_new (self->fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
  g_source_set_callback (self->in_source, G_SOURCE_FUNC (on_readable), self, NULL);
  g_source_set_static_name (self->in_source, "[arip] channel read");
  /* GLib blocks a source that cannot recurse while it dispatches, which
   * removes its fd from the poll set and wakes the context up, twice per
   * dispatch. Frames keep their order when a handler iterates the context
   * itself, so recursion is safe here and saves those syscalls. */
  g_source_set_can_recurse (self->in_source, TRUE);
  g_source_attach (self->in_source, self->context);
}

static gboolean
on_readable (gint          fd,
             GIOCondition  condition,
             gpointer      user_data)
{
  AripChannel *self = user_data;
  /* One dispatch hands out a bounded number of frames in a bounded time,
   * so that a flood from one child never starves the rest of the main
   * context: what is left waits for the next iteration. */
  Budget budget = { MAX_FRAMES_PER_DISPATCH, g_get_monotonic_time () + MAX_DISPATCH_US };
  DispatchResult r;

  arip_channel_ref (self);
  if (self->in_source != NULL)
    g_source_set_ready_time (self->in_source, -1);
  r = read_available (self, MAX_READS_PER_DISPATCH, 0, &budget, NULL);
  if (r == DISPATCH_PAUSED && self->checking == NULL && self->in_source != NULL)
    g_source_set_ready_time (self->in_source, 0);
  if (r == DISPATCH_OVER && self->in_source != NULL)
    {
      /* finish_reading() already destroyed it; be safe either way. */
      g_clear_pointer (&self->in_source, g_source_unref);
    }
  arip_channel_unref (self);

  /* While a value is checked, the source is gone; it comes back after. */
  return r == DISPATCH_OVER || self->in_source == NULL ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

/* Checking a large value for normal form may take seconds (GLib checks
 * an array of 100 million elements one by one): it happens in a thread of
 * GIO's pool, and the channel stops reading until it is done, so frames
 * keep their order. */
static void
check_in_thread (GTask        *task,
                 gpointer      source_object,
                 gpointer      task_data,
                 GCancellable *cancellable)
{
  AripFrame *frame = task_data;

  g_task_return_boolean (task, arip_frame_check (frame));
}

static void
on_checked (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  AripChannel *self = user_data;
  AripFrame *frame = g_steal_pointer (&self->checking);
  gboolean ok = g_task_propagate_boolean (G_TASK (result), NULL);

  if (!self->closed && !self->reading_done && (self->draining || self->drained_func == NULL))
    {
      if (!ok)
        {
          g_autoptr(GError) invalid =
            g_error_new (ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                         _("a %s frame whose value is not in normal form"),
                         arip_frame_kind_to_string (frame->kind));
          finish_reading (self, invalid);
        }
      else
        {
          hand_out (self, g_steal_pointer (&frame));
          if (!self->draining && !self->closed && !self->reading_done && self->in_source == NULL)
            {
              watch_input (self);
              /* Frames may be buffered already: look at once. */
              g_source_set_ready_time (self->in_source, 0);
            }
        }
    }

  /* A drain waits for the check; it ends even if the channel closed. */
  if (self->draining)
    continue_drain (self);

  arip_frame_free (frame);
  arip_channel_unref (self);
}

static void
start_check (AripChannel *self,
             AripFrame   *frame)
{
  g_autoptr(GTask) task = NULL;

  self->checking = frame;
  if (self->in_source != NULL)
    {
      g_source_destroy (self->in_source);
      g_clear_pointer (&self->in_source, g_source_unref);
    }

  g_main_context_push_thread_default (self->context);
  task = g_task_new (NULL, NULL, on_checked, arip_channel_ref (self));
  g_main_context_pop_thread_default (self->context);
  g_task_set_source_tag (task, start_check);
  g_task_set_task_data (task, frame, NULL);
  g_task_run_in_thread (task, check_in_thread);
}

void
arip_channel_start_reading (AripChannel           *self,
                            GMainContext          *context,
                            AripChannelFrameFunc   frame_func,
                            AripChannelClosedFunc  closed_func,
                            gpointer               user_data)
{
  g_return_if_fail (self->in_source == NULL);
  g_return_if_fail (!self->closed);

  self->context = context != NULL ? g_main_context_ref (context)
                                  : g_main_context_ref_thread_default ();
  self->frame_func = frame_func;
  self->closed_func = closed_func;
  self->user_data = user_data;

  watch_input (self);

  /* Frames that were already decoded by receive_sync() are due now. */
  if (arip_frame_decoder_has_partial (self->decoder))
    g_source_set_ready_time (self->in_source, 0);
}

/* Reads on for a drain; calls its callback once it is over. */
static void
continue_drain (AripChannel *self)
{
  AripChannelDrainedFunc done;
  gsize total = 0;

  /* Frames already read come first, then at most what is left to read. */
  if (self->checking == NULL && !self->closed && !self->reading_done &&
      dispatch_frames (self, NULL) == DISPATCH_NEED_BYTES && self->drain_left > 0)
    {
      read_available (self, 0, self->drain_left, NULL, &total);
      self->drain_left -= MIN (total, self->drain_left);
    }

  /* A large value is being checked: the drain goes on once it is (unless
   * it must end now). */
  if (self->checking != NULL && !self->closed && !self->reading_done && !self->drain_now)
    return;

  /* The writer is dead: a frame it began is never finished. */
  if (!self->closed && !self->reading_done && arip_frame_decoder_has_partial (self->decoder))
    {
      g_autoptr(GError) truncated =
        g_error_new (ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                     _("the channel was closed in the middle of a frame"));
      finish_reading (self, truncated);
    }

  self->draining = FALSE;
  self->drain_now = FALSE;
  done = g_steal_pointer (&self->drained_func);
  if (done != NULL)
    done (self, self->drained_data);
}

void
arip_channel_drain (AripChannel            *self,
                    gsize                   max_bytes,
                    AripChannelDrainedFunc  done,
                    gpointer                user_data)
{
  g_return_if_fail (!self->draining);

  self->draining = TRUE;
  self->drain_left = max_bytes;
  self->drained_func = done;
  self->drained_data = user_data;
  if (self->in_source != NULL)
    {
      /* Nothing reads on its own any more: only the drain. */
      g_source_destroy (self->in_source);
      g_clear_pointer (&self->in_source, g_source_unref);
    }

  arip_channel_ref (self);
  continue_drain (self);
  arip_channel_unref (self);
}

void
arip_channel_drain_now (AripChannel *self)
{
  if (!self->draining)
    return;

  arip_channel_ref (self);
  self->drain_now = TRUE;
  continue_drain (self);
  arip_channel_unref (self);
}

/* Writes what the socket takes now. FALSE with @error on a real failure. */
#define MAX_GATHER 16

/* Writes what the socket takes now, several queued frames per sendmsg()
 * when they carry no descriptors. FALSE with @error on a failure
 * (G_IO_ERROR_WOULD_BLOCK when the socket is full). */
static gboolean
write_available (AripChannel  *self,
                 GError      **error)
{
  while (!g_queue_is_empty (&self->out_queue))
    {
      struct iovec vectors[MAX_GATHER];
      union {
        char buf[CMSG_SPACE (sizeof (int) * ARIP_FRAME_MAX_FDS)];
        struct cmsghdr align;
      } control;
      struct msghdr msg = { 0 };
      guint n_vectors = 0;
      gssize n;

      for (GList *l = self->out_queue.head; l != NULL && n_vectors < MAX_GATHER; l = l->next)
        {
          OutFrame *out = l->data;
          gsize size;

          /* Descriptors go with the first byte of their frame, so a frame
           * with descriptors starts a sendmsg() of its own. */
          if (n_vectors > 0 && out->fds != NULL)
            break;
          if (n_vectors == 0 && out->offset == 0 && out->fds != NULL)
            {
              gint n_fds = 0;
              const gint *fds = g_unix_fd_list_peek_fds (out->fds, &n_fds);
              struct cmsghdr *c;

              memset (control.buf, 0, sizeof control.buf);
              msg.msg_control = control.buf;
              msg.msg_controllen = CMSG_SPACE (sizeof (int) * n_fds);
              c = (struct cmsghdr *) control.buf;
              c->cmsg_level = SOL_SOCKET;
              c->cmsg_type = SCM_RIGHTS;
              c->cmsg_len = CMSG_LEN (sizeof (int) * n_fds);
              memcpy (CMSG_DATA (c), fds, sizeof (int) * n_fds);
            }

          vectors[n_vectors].iov_base = (guint8 *) g_bytes_get_data (out->data, &size) + out->offset;
          vectors[n_vectors].iov_len = size - out->offset;
          n_vectors++;
        }

      msg.msg_iov = vectors;
      msg.msg_iovlen = n_vectors;

      do
        n = sendmsg (self->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      while (n < 0 && errno == EINTR);

      if (n < 0)
        {
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "sendmsg: EAGAIN");
          else
            set_errno_error (error, errno, "sendmsg");
          return FALSE;
        }

      while (n > 0)
        {
          OutFrame *out = g_queue_peek_head (&self->out_queue);
          gsize size = g_bytes_get_size (out->data);
          gsize taken = MIN ((gsize) n, size - out->offset);

          out->offset += taken;
          self->out_bytes -= taken;
          n -= taken;
          if (out->offset == size)
            {
              self->out_bytes -= out->extra;
              out_frame_free (g_queue_pop_head (&self->out_queue));
            }
        }
    }

  return TRUE;
}

static gboolean
on_writable (gint          fd,
             GIOCondition  condition,
             gpointer      user_data)
{
  AripChannel *self = user_data;
  g_autoptr(GError) error = NULL;

  if (write_available (self, &error))
    {
      g_clear_pointer (&self->out_source, g_source_unref);
      return G_SOURCE_REMOVE;
    }

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return G_SOURCE_CONTINUE;

  /* The peer is gone; what we meant to tell it no longer matters, and the
   * reading side reports the end. */
  g_debug ("Writing to the channel failed: %s", error->message);
  self->write_failed = TRUE;
  g_queue_clear_full (&self->out_queue, out_frame_free);
  self->out_bytes = 0;
  g_clear_pointer (&self->out_source, g_source_unref);
  return G_SOURCE_REMOVE;
}

static gboolean
send_bytes_full (AripChannel  *self,
                 GBytes       *data,
                 GUnixFDList  *fds,
                 gsize         extra,
                 GError      **error)
{
  g_autoptr(GError) local_error = NULL;
  OutFrame *out;

  g_return_val_if_fail (self != NULL, FALSE);

  if (data == NULL)
    {
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_FAILED,
                   _("The data is larger than the limit of %u bytes"), ARIP_FRAME_MAX_SIZE);
      return FALSE;
    }

  if (self->closed || self->write_failed)
    {
      g_bytes_unref (data);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED, _("The channel is closed"));
      return FALSE;
    }

  out = g_new0 (OutFrame, 1);
  out->data = data;
  out->fds = fds != NULL ? g_object_ref (fds) : NULL;
  out->extra = extra;
  g_queue_push_tail (&self->out_queue, out);
  self->out_bytes += g_bytes_get_size (data) + extra;

  /* Pending output, or a writer that flushes: frames gather and leave
   * together. */
  if (self->out_source != NULL || self->sync_writes)
    return TRUE;

  if (write_available (self, &local_error))
    return TRUE;

  if (!g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    {
      self->write_failed = TRUE;
      g_queue_clear_full (&self->out_queue, out_frame_free);
      self->out_bytes = 0;
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }

  if (self->context != NULL && !self->sync_writes)
    {
      self->out_source = g_unix_fd_source_new (self->fd, G_IO_OUT);
      g_source_set_callback (self->out_source, G_SOURCE_FUNC (on_writable), self, NULL);
      g_source_set_static_name (self->out_source, "[arip] channel write");
      g_source_attach (self->out_source, self->context);
    }

  return TRUE;
}

gboolean
arip_channel_send_bytes (AripChannel  *self,
                         GBytes       *data,
                         GUnixFDList  *fds,
                         GError      **error)
{
  return send_bytes_full (self, data, fds, 0, error);
}

/* A sealed memfd holding @value, as the list of one descriptor. */
static GUnixFDList *
memfd_list_for (GVariant  *value,
                GError   **error)
{
  gint fd = arip_memfd_new_for_value (value, error);

  return fd >= 0 ? g_unix_fd_list_new_from_array (&fd, 1) : NULL;
}

/* @fds (nullable) with @memfd_list's one descriptor after them. */
static GUnixFDList *
append_memfd (GUnixFDList *fds,
              GUnixFDList *memfd_list)
{
  GUnixFDList *all;
  gint n = 0;
  const gint *user = fds != NULL ? g_unix_fd_list_peek_fds (fds, &n) : NULL;

  if (fds == NULL)
    return g_object_ref (memfd_list);
  all = g_unix_fd_list_new ();
  for (gint i = 0; i < n; i++)
    if (g_unix_fd_list_append (all, user[i], NULL) < 0)
      {
        g_object_unref (all);
        return NULL;
      }
  if (g_unix_fd_list_append (all, g_unix_fd_list_peek_fds (memfd_list, NULL)[0], NULL) < 0)
    {
      g_object_unref (all);
      return NULL;
    }
  return all;
}

static guint
fds_length (GUnixFDList *fds)
{
  return fds != NULL ? (guint) g_unix_fd_list_get_length (fds) : 0;
}

static gboolean
check_fds_count (GUnixFDList  *fds,
                 guint         extra,
                 GError      **error)
{
  if (fds_length (fds) + extra <= ARIP_FRAME_MAX_FDS)
    return TRUE;
  g_set_error (error, ARIP_ERROR, ARIP_ERROR_FAILED,
               _("A value can carry at most %u file descriptors, not %u"),
               ARIP_FRAME_MAX_FDS - extra, fds_length (fds));
  return FALSE;
}

gboolean
arip_channel_send_value_with_fds (AripChannel    *self,
                                  AripFrameKind   kind,
                                  GVariant       *value,
                                  GUnixFDList    *fds,
                                  GError        **error)
{
  g_autoptr(GVariant) normal = arip_variant_normal (value);
  g_autoptr(GUnixFDList) memfd = NULL;
  g_autoptr(GUnixFDList) all = NULL;
  gsize size = g_variant_get_size (normal);

  g_return_val_if_fail (kind == ARIP_FRAME_RESULT || kind == ARIP_FRAME_MESSAGE, FALSE);

  if (!check_fds_count (fds, 1, error))
    return FALSE;
  if (size < ARIP_MEMFD_MIN_SIZE)
    return send_bytes_full (self, arip_frame_encode_value (kind, normal, fds_length (fds)), fds, 0,
                            error);

  if (size > ARIP_FRAME_MAX_SIZE)
    return send_bytes_full (self, NULL, NULL, 0, error);
  memfd = memfd_list_for (normal, error);
  if (memfd == NULL)
    return FALSE;
  all = append_memfd (fds, memfd);
  if (all == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES,
                           _("Out of file descriptors"));
      return FALSE;
    }
  /* The memfd holds its pages until the peer is done with the message,
   * which it says with a CONSUMED frame: until then they count as queued.
   * (A result is the last thing a worker sends: nobody waits on it.) */
  if (kind == ARIP_FRAME_MESSAGE)
    self->in_flight += size;
  return send_bytes_full (self,
                          arip_frame_encode (kind == ARIP_FRAME_RESULT ? ARIP_FRAME_RESULT_MEMFD
                                                                       : ARIP_FRAME_MESSAGE_MEMFD,
                                             g_variant_new ("(ts)", (guint64) size,
                                                            g_variant_get_type_string (normal)),
                                             fds_length (all)),
                          all, size, error);
}

gboolean
arip_channel_send_value (AripChannel    *self,
                         AripFrameKind   kind,
                         GVariant       *value,
                         GError        **error)
{
  return arip_channel_send_value_with_fds (self, kind, value, NULL, error);
}

gboolean
arip_channel_send_call_with_fds (AripChannel  *self,
                                 const char   *function,
                                 GVariant     *args,
                                 GUnixFDList  *fds,
                                 GError      **error)
{
  g_autoptr(GVariant) normal = arip_variant_normal (args);
  g_autoptr(GUnixFDList) memfd = NULL;
  g_autoptr(GUnixFDList) all = NULL;
  gsize size = g_variant_get_size (normal);

  if (!check_fds_count (fds, 1, error))
    return FALSE;
  if (size < ARIP_MEMFD_MIN_SIZE)
    return send_bytes_full (self, arip_frame_encode_call (function, normal, fds_length (fds)),
                            fds, 0, error);

  if (size > ARIP_FRAME_MAX_SIZE)
    return send_bytes_full (self, NULL, NULL, 0, error);
  memfd = memfd_list_for (normal, error);
  if (memfd == NULL)
    return FALSE;
  all = append_memfd (fds, memfd);
  if (all == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES,
                           _("Out of file descriptors"));
      return FALSE;
    }
  return send_bytes_full (self,
                          arip_frame_encode (ARIP_FRAME_CALL_MEMFD,
                                             g_variant_new ("(sts)", function, (guint64) size,
                                                            g_variant_get_type_string (normal)),
                                             fds_length (all)),
                          all, size, error);
}

gboolean
arip_channel_send_call (AripChannel  *self,
                        const char   *function,
                        GVariant     *args,
                        GError      **error)
{
  return arip_channel_send_call_with_fds (self, function, args, NULL, error);
}

static gboolean
handles_fit (GVariant *value,
             gint      n_fds)
{
  const char *type = g_variant_get_type_string (value);
  GVariantIter iter;
  GVariant *child;

  if (g_variant_is_of_type (value, G_VARIANT_TYPE_HANDLE))
    {
      gint32 index = g_variant_get_handle (value);

      return index >= 0 && index < n_fds;
    }
  if (!g_variant_is_container (value) || (strchr (type, 'h') == NULL && strchr (type, 'v') == NULL))
    return TRUE;
  g_variant_iter_init (&iter, value);
  while ((child = g_variant_iter_next_value (&iter)) != NULL)
    {
      gboolean fits = handles_fit (child, n_fds);

      g_variant_unref (child);
      if (!fits)
        return FALSE;
    }
  return TRUE;
}

gboolean
arip_variant_check_handles (GVariant     *value,
                            GUnixFDList  *fds,
                            GError      **error)
{
  if (value == NULL || handles_fit (value, (gint) fds_length (fds)))
    return TRUE;
  g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
               _("A handle in a value of type “%s” indexes none of the %u file descriptors "
                 "that came with it"),
               g_variant_get_type_string (value), fds_length (fds));
  return FALSE;
}

gboolean
arip_channel_send (AripChannel    *self,
                   AripFrameKind   kind,
                   GVariant       *payload,
                   GUnixFDList    *fds,
                   GError        **error)
{
  guint n_fds = fds != NULL ? (guint) g_unix_fd_list_get_length (fds) : 0;
  GBytes *data;

  g_return_val_if_fail (self != NULL, FALSE);

  if (n_fds > ARIP_FRAME_MAX_FDS)
    {
      g_variant_unref (g_variant_ref_sink (payload));
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_FAILED,
                   _("A message can carry at most %u file descriptors, not %u"),
                   ARIP_FRAME_MAX_FDS, n_fds);
      return FALSE;
    }

  data = arip_frame_encode (kind, payload, n_fds);
  if (data == NULL)
    {
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_FAILED,
                   _("The %s is larger than the limit of %u bytes"),
                   arip_frame_kind_to_string (kind), ARIP_FRAME_MAX_SIZE);
      return FALSE;
    }

  return arip_channel_send_bytes (self, data, fds, error);
}

void
arip_channel_set_sync_writes (AripChannel *self,
                              gboolean     sync_writes)
{
  self->sync_writes = !!sync_writes;
}

gboolean
arip_channel_flush_sync (AripChannel  *self,
                         GError      **error)
{
  if (self->out_source != NULL)
    {
      g_source_destroy (self->out_source);
      g_clear_pointer (&self->out_source, g_source_unref);
    }

  while (!g_queue_is_empty (&self->out_queue))
    {
      g_autoptr(GError) local_error = NULL;

      if (write_available (self, &local_error))
        break;

      if (!g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }

      if (!wait_for (self, POLLOUT, error))
        return FALSE;
    }

  return TRUE;
}

void
arip_channel_set_handlers (AripChannel           *self,
                           AripChannelFrameFunc   frame_func,
                           AripChannelClosedFunc  closed_func,
                           gpointer               user_data)
{
  self->frame_func = frame_func;
  self->closed_func = closed_func;
  self->user_data = user_data;
}

/* Hands out frames now, reading the socket first if @read; the handlers
 * may drop the last reference but ours. */
static gboolean
hand_out_now (AripChannel *self,
              gboolean     read)
{
  DispatchResult r;

  if (self->closed || self->reading_done)
    return FALSE;
  arip_channel_ref (self);
  r = read ? read_available (self, 0, 0, NULL, NULL) : dispatch_frames (self, NULL);
  arip_channel_unref (self);
  return r != DISPATCH_OVER;
}

gboolean
arip_channel_read_nowait (AripChannel *self)
{
  return hand_out_now (self, TRUE);
}

gboolean
arip_channel_dispatch_buffered (AripChannel *self)
{
  return hand_out_now (self, FALSE);
}

gboolean
arip_channel_flush_nowait (AripChannel  *self,
                           GError      **error)
{
  if (self->write_failed)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE, _("The channel is closed"));
      return FALSE;
    }
  if (g_queue_is_empty (&self->out_queue))
    return TRUE;
  return write_available (self, error);
}

AripFrame *
arip_channel_receive_sync (AripChannel  *self,
                           GError      **error)
{
  for (;;)
    {
      g_autoptr(GError) local_error = NULL;
      AripFrame *frame = NULL;
      gssize n;

      if (!arip_frame_decoder_next (self->decoder, &frame, error))
        return NULL;
      if (frame != NULL)
        {
          /* What came with it is for the async reader, which only hears
           * of new bytes on the socket: tell it. */
          if (self->in_source != NULL && arip_frame_decoder_has_partial (self->decoder))
            g_source_set_ready_time (self->in_source, 0);
          return frame;
        }

      /* The peer answers what we just sent: it is rarely there yet, so
       * wait first rather than read, fail and wait. */
      if (!wait_for (self, POLLIN, error))
        return NULL;

      n = read_once (self, 0, &local_error);
      if (n == 0)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                       _("The other end closed the channel"));
          return NULL;
        }
      if (n < 0)
        {
          if (!g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            {
              g_propagate_error (error, g_steal_pointer (&local_error));
              return NULL;
            }
          if (!wait_for (self, POLLIN, error))
            return NULL;
        }
    }
}

void
arip_channel_close (AripChannel *self)
{
  if (self->closed)
    return;
  self->closed = TRUE;

  if (self->in_source != NULL)
    {
      g_source_destroy (self->in_source);
      g_clear_pointer (&self->in_source, g_source_unref);
    }
  if (self->out_source != NULL)
    {
      g_source_destroy (self->out_source);
      g_clear_pointer (&self->out_source, g_source_unref);
    }
  g_queue_clear_full (&self->out_queue, out_frame_free);
  self->out_bytes = 0;
  g_clear_pointer (&self->decoder, arip_frame_decoder_free);
  g_clear_pointer (&self->context, g_main_context_unref);
  if (self->fd >= 0)
    {
      close (self->fd);
      self->fd = -1;
    }
}
