/* arip-frame.c: the frames of the parent <-> worker protocol
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * How a frame is laid out (a header, a GVariant payload, descriptors that
 * come with it or a memfd that holds its value), made and taken apart. What
 * arrives is untrusted: the decoder checks the kind, the size (against a
 * hard limit, and without ever allocating for bytes that have not
 * arrived), the payload's type and that it is in normal form, and that the
 * descriptors a frame announces really came. arip-channel.c moves frames
 * over a socket.
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

#include "arip-error.h"
#include "arip-frame-private.h"
#include "arip-memfd-private.h"
#include "arip-normal-form-private.h"

#define READ_CHUNK        (64 * 1024)

typedef struct {
  guint32 size;
  guint16 kind;
  guint16 n_fds;
} FrameHeader;

G_STATIC_ASSERT (sizeof (FrameHeader) == ARIP_FRAME_HEADER_SIZE);
static const struct {
  const char *name;
  const char *type;
} frame_kinds[] = {
  [ARIP_FRAME_HELLO] = { "hello", "(ui)" },
  [ARIP_FRAME_STATE] = { "state", "(u)" },
  [ARIP_FRAME_CALL] = { "call", "(sv)" },
  [ARIP_FRAME_RESULT] = { "result", "(v)" },
  [ARIP_FRAME_ERROR] = { "error", "(sis)" },
  [ARIP_FRAME_MESSAGE] = { "message", "(v)" },
  [ARIP_FRAME_PROGRESS] = { "progress", "(d)" },
  [ARIP_FRAME_RESULT_MEMFD] = { "result", "(ts)" },
  [ARIP_FRAME_MESSAGE_MEMFD] = { "message", "(ts)" },
  [ARIP_FRAME_CALL_MEMFD] = { "call", "(sts)" },
  [ARIP_FRAME_CONSUMED] = { "consumed", "(t)" },
  [ARIP_FRAME_SHARED_CONNECT] = { "shared connection", "(u)" },
  [ARIP_FRAME_REQUEST] = { "request", "(uutv)" },
  [ARIP_FRAME_REPLY] = { "reply", "(ubv)" },
  [ARIP_FRAME_REPLY_ERROR] = { "error reply", "(usis)" },
  [ARIP_FRAME_EVENT] = { "event", "(tsv)" },
  [ARIP_FRAME_SANDBOX] = { "sandbox report", "(uubas)" },
};

/* Kinds whose payload is always kept whole and checked as a whole: the
 * rare ones, and those of the shared objects' connection. */
static gboolean
kind_keeps_payload (guint kind)
{
  return kind == ARIP_FRAME_ERROR || kind == ARIP_FRAME_SHARED_CONNECT ||
         kind == ARIP_FRAME_REPLY_ERROR || kind == ARIP_FRAME_EVENT ||
         kind == ARIP_FRAME_SANDBOX;
}

static gboolean
kind_is_valid (guint kind)
{
  return kind >= ARIP_FRAME_HELLO && kind <= ARIP_FRAME_LAST_KIND;
}

GVariant *
arip_variant_unit (void)
{
  static GVariant *unit;

  if (g_once_init_enter (&unit))
    g_once_init_leave (&unit, g_variant_ref_sink (g_variant_new_tuple (NULL, 0)));
  return g_variant_ref (unit);
}

const GVariantType *
arip_frame_kind_get_type (AripFrameKind kind)
{
  g_return_val_if_fail (kind_is_valid (kind), NULL);

  return G_VARIANT_TYPE (frame_kinds[kind].type);
}

const char *
arip_frame_kind_to_string (AripFrameKind kind)
{
  if (!kind_is_valid (kind))
    return "unknown";
  return frame_kinds[kind].name;
}

void
arip_frame_free (AripFrame *frame)
{
  if (frame == NULL)
    return;
  g_clear_pointer (&frame->payload, g_variant_unref);
  g_clear_pointer (&frame->value, g_variant_unref);
  g_free (frame->function_owned);
  g_clear_object (&frame->fds);
  g_free (frame);
}

GBytes *
arip_frame_encode (AripFrameKind  kind,
                   GVariant      *payload,
                   guint          n_fds)
{
  g_autoptr(GVariant) value = NULL;
  FrameHeader header;
  gsize size;
  guint8 *data;

  g_return_val_if_fail (kind_is_valid (kind), NULL);
  g_return_val_if_fail (payload != NULL, NULL);
  g_return_val_if_fail (n_fds <= ARIP_FRAME_MAX_FDS, NULL);

  value = g_variant_ref_sink (payload);
  g_return_val_if_fail (g_variant_is_of_type (value, arip_frame_kind_get_type (kind)), NULL);

  if (!g_variant_is_normal_form (value))
    {
      GVariant *normal = g_variant_get_normal_form (value);
      g_variant_unref (value);
      value = g_variant_ref_sink (normal);
    }

  size = g_variant_get_size (value);
  if (size > ARIP_FRAME_MAX_SIZE)
    return NULL;

  header.size = (guint32) size;
  header.kind = (guint16) kind;
  header.n_fds = (guint16) n_fds;

  data = g_malloc (ARIP_FRAME_HEADER_SIZE + size);
  memcpy (data, &header, sizeof header);
  g_variant_store (value, data + ARIP_FRAME_HEADER_SIZE);

  return g_bytes_new_take (data, ARIP_FRAME_HEADER_SIZE + size);
}

#define MAX_ERROR_DOMAIN 256

static gboolean
domain_name_is_sane (const char *domain)
{
  gsize len = strlen (domain);

  if (len == 0 || len > MAX_ERROR_DOMAIN)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (domain[i]) && strchr ("-_.", domain[i]) == NULL)
      return FALSE;
  return TRUE;
}

/* Error domains are quarks, and quarks live as long as the process: only
 * this many domains this process did not know yet are created from what
 * children send. */
#define MAX_NEW_ERROR_DOMAINS 64

static gint new_error_domains;

static GQuark
domain_to_quark (const char *domain)
{
  GQuark quark = g_quark_try_string (domain);

  if (quark != 0)
    return quark;
  if (g_atomic_int_add (&new_error_domains, 1) >= MAX_NEW_ERROR_DOMAINS)
    {
      g_atomic_int_add (&new_error_domains, -1);
      return 0;
    }
  return g_quark_from_string (domain);
}

GError *
arip_frame_payload_to_error (GVariant *payload)
{
  const char *domain, *message;
  GQuark quark;
  gint32 code;

  g_variant_get (payload, "(&si&s)", &domain, &code, &message);

  if (!domain_name_is_sane (domain))
    return NULL;

  if (g_str_equal (domain, g_quark_to_string (G_IO_ERROR)) && code == G_IO_ERROR_CANCELLED)
    return g_error_new_literal (ARIP_ERROR, ARIP_ERROR_CHILD_CANCELLED, message);

  quark = domain_to_quark (domain);
  if (quark == 0)
    return g_error_new (ARIP_ERROR, ARIP_ERROR_UNKNOWN_DOMAIN, "%s (%d): %s", domain, code, message);

  return g_error_new_literal (quark, code, message);
}

static guint8 *
frame_alloc (AripFrameKind  kind,
             gsize          size,
             guint          n_fds,
             gsize         *total)
{
  FrameHeader header;
  guint8 *data;

  header.size = (guint32) size;
  header.kind = (guint16) kind;
  header.n_fds = (guint16) n_fds;

  *total = ARIP_FRAME_HEADER_SIZE + size;
  data = g_malloc (*total);
  memcpy (data, &header, sizeof header);
  return data;
}

/* Below this, a value's normal form is checked by GLib. */
#define SMALL_VALUE_SIZE 4096

/* A value in normal form, as GVariant requires inside a normal-form
 * container; trusted values built by GLib already are. */
static gboolean
may_be_fixed_array (const char *type)
{
  return (type[0] == 'a' && type[1] != '\0' && type[2] == '\0') ||
         (type[0] == '(' && type[1] == 'a' && type[2] != '\0' && type[3] == ')' && type[4] == '\0');
}

GVariant *
arip_variant_normal (GVariant *value)
{
  GVariant *owned = g_variant_ref_sink (value);
  g_autoptr(GVariant) inner = NULL;
  const char *type;

  /* A small value is checked the plain way (a value built here is
   * trusted, and GLib answers at once). */
  if (g_variant_get_size (owned) <= SMALL_VALUE_SIZE && g_variant_is_normal_form (owned))
    return owned;
  type = g_variant_get_type_string (owned);

  /* Large fixed arrays are the common big value, alone or as a plain "v"
   * or "(v)": their bytes are checked fast (see arip-normal-form.c).
   * Only the array's bytes are asked for: a value built here is not
   * serialized whole just to be checked (a copy of all of it). */
  if (g_str_equal (type, "v"))
    inner = g_variant_get_variant (owned);
  else if (g_str_equal (type, "(v)"))
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (owned, 0);

      inner = g_variant_get_variant (child);
    }
  else
    inner = g_variant_ref (owned);
  type = g_variant_get_type_string (inner);
  if (may_be_fixed_array (type) &&
      arip_normal_form_check (type, g_variant_get_data (inner), g_variant_get_size (inner)) == 1)
    return owned;

  if (!g_variant_is_normal_form (owned))
    {
      GVariant *normal = g_variant_ref_sink (g_variant_get_normal_form (owned));
      g_variant_unref (owned);
      owned = normal;
    }
  return owned;
}

/* A serialized "v": the child's data, a zero byte, the child's type. */
static gsize
variant_size (GVariant *value)
{
  return g_variant_get_size (value) + 1 + strlen (g_variant_get_type_string (value));
}

static void
store_variant (GVariant *value,
               guint8   *dest)
{
  gsize size = g_variant_get_size (value);
  const char *type = g_variant_get_type_string (value);

  g_variant_store (value, dest);
  dest[size] = '\0';
  memcpy (dest + size + 1, type, strlen (type));
}

/* A tuple whose only variable member is a "v" at its end: the fixed
 * members at their places in @head (none: "(v)", laid out as its only
 * member), then the variant, with no framing offset. */
static GBytes *
encode_head_and_variant (AripFrameKind  kind,
                         const guint8  *head,
                         gsize          head_size,
                         GVariant      *value,
                         guint          n_fds)
{
  g_autoptr(GVariant) normal = arip_variant_normal (value);
  gsize size, total;
  guint8 *data;

  g_return_val_if_fail (n_fds <= ARIP_FRAME_MAX_FDS, NULL);

  size = head_size + variant_size (normal);
  if (size > ARIP_FRAME_MAX_SIZE)
    return NULL;
  data = frame_alloc (kind, size, n_fds, &total);
  if (head_size > 0)
    memcpy (data + ARIP_FRAME_HEADER_SIZE, head, head_size);
  store_variant (normal, data + ARIP_FRAME_HEADER_SIZE + head_size);
  return g_bytes_new_take (data, total);
}

GBytes *
arip_frame_encode_value (AripFrameKind  kind,
                         GVariant      *value,
                         guint          n_fds)
{
  g_return_val_if_fail (kind == ARIP_FRAME_RESULT || kind == ARIP_FRAME_MESSAGE, NULL);

  return encode_head_and_variant (kind, NULL, 0, value, n_fds);
}

GBytes *
arip_frame_encode_request (guint32   serial,
                           guint32   op,
                           guint64   id,
                           GVariant *arg,
                           guint     n_fds)
{
  guint8 head[16];

  memcpy (head, &serial, 4);
  memcpy (head + 4, &op, 4);
  memcpy (head + 8, &id, 8);
  return encode_head_and_variant (ARIP_FRAME_REQUEST, head, sizeof head, arg, n_fds);
}

GBytes *
arip_frame_encode_reply (guint32   serial,
                         gboolean  flag,
                         GVariant *value,
                         guint     n_fds)
{
  guint8 head[8] = { 0 };

  memcpy (head, &serial, 4);
  head[4] = flag ? 1 : 0;   /* then zeros up to the variant's alignment */
  return encode_head_and_variant (ARIP_FRAME_REPLY, head, sizeof head, value, n_fds);
}

GBytes *
arip_frame_encode_call (const char *function,
                        GVariant   *args,
                        guint       n_fds)
{
  g_autoptr(GVariant) normal = arip_variant_normal (args);
  gsize string_size = strlen (function) + 1;
  gsize variant_offset = (string_size + 7) & ~(gsize) 7;
  gsize body = variant_offset + variant_size (normal);
  gsize offset_size, size, total;
  guint64 offset = string_size;
  guint8 *data, *p;

  g_return_val_if_fail (n_fds <= ARIP_FRAME_MAX_FDS, NULL);

  /* "(sv)": the string, zero padding to the variant's alignment of 8, the
   * variant, then one framing offset (the end of the string), little
   * endian, as wide as the container's size requires. */
  if (body + 1 <= G_MAXUINT8)
    offset_size = 1;
  else if (body + 2 <= G_MAXUINT16)
    offset_size = 2;
  else if (body + 4 <= G_MAXUINT32)
    offset_size = 4;
  else
    offset_size = 8;
  size = body + offset_size;
  if (size > ARIP_FRAME_MAX_SIZE)
    return NULL;

  data = frame_alloc (ARIP_FRAME_CALL, size, n_fds, &total);
  p = data + ARIP_FRAME_HEADER_SIZE;
  memcpy (p, function, string_size);
  memset (p + string_size, 0, variant_offset - string_size);
  store_variant (normal, p + variant_offset);
  for (gsize i = 0; i < offset_size; i++)
    p[body + i] = (offset >> (8 * i)) & 0xff;

  return g_bytes_new_take (data, total);
}

GBytes *
arip_frame_encode_u32 (AripFrameKind kind,
                       guint32       value)
{
  gsize total;
  guint8 *data = frame_alloc (kind, sizeof value, 0, &total);

  g_return_val_if_fail (kind == ARIP_FRAME_STATE, NULL);

  memcpy (data + ARIP_FRAME_HEADER_SIZE, &value, sizeof value);
  return g_bytes_new_take (data, total);
}

GBytes *
arip_frame_encode_hello (guint32 version,
                         gint32  pid)
{
  gsize total;
  guint8 *data = frame_alloc (ARIP_FRAME_HELLO, 8, 0, &total);

  memcpy (data + ARIP_FRAME_HEADER_SIZE, &version, 4);
  memcpy (data + ARIP_FRAME_HEADER_SIZE + 4, &pid, 4);
  return g_bytes_new_take (data, total);
}

GBytes *
arip_frame_encode_consumed (guint64 size)
{
  gsize total;
  guint8 *data = frame_alloc (ARIP_FRAME_CONSUMED, sizeof size, 0, &total);

  memcpy (data + ARIP_FRAME_HEADER_SIZE, &size, sizeof size);
  return g_bytes_new_take (data, total);
}

GBytes *
arip_frame_encode_double (AripFrameKind kind,
                          gdouble       value)
{
  gsize total;
  guint8 *data = frame_alloc (kind, sizeof value, 0, &total);

  g_return_val_if_fail (kind == ARIP_FRAME_PROGRESS, NULL);

  memcpy (data + ARIP_FRAME_HEADER_SIZE, &value, sizeof value);
  return g_bytes_new_take (data, total);
}

/* ---------------------------------------------------------------------- */
/* The decoder                                                            */

struct _AripFrameDecoder {
  guint8  *buf;
  gsize    cap;
  gsize    pos;        /* first unconsumed byte */
  gsize    len;        /* end of valid bytes */
  gsize    max_frame_size;
  GArray  *fds;        /* gint, received and not yet given to a frame */
  GError  *error;      /* set once the stream is broken */
  gboolean keep_payload;
  gsize    defer_check_size;   /* 0: check every value at once */
  guint    max_fds;            /* the most a frame may carry */
  guint    max_other_fds;      /* ... that is not a result (memfd aside) */
};

AripFrameDecoder *
arip_frame_decoder_new (gsize max_frame_size)
{
  AripFrameDecoder *self = g_new0 (AripFrameDecoder, 1);

  self->max_frame_size = MIN (max_frame_size, (gsize) ARIP_FRAME_MAX_SIZE);
  self->keep_payload = TRUE;
  self->max_fds = ARIP_FRAME_MAX_FDS;
  self->max_other_fds = ARIP_FRAME_MAX_FDS;
  self->fds = g_array_new (FALSE, FALSE, sizeof (gint));
  return self;
}

void
arip_frame_decoder_set_max_fds (AripFrameDecoder *self,
                                guint             max_fds,
                                guint             max_other_fds)
{
  self->max_fds = max_fds;
  self->max_other_fds = max_other_fds;
}

static void
close_queued_fds (AripFrameDecoder *self)
{
  for (guint i = 0; i < self->fds->len; i++)
    close (g_array_index (self->fds, gint, i));
  g_array_set_size (self->fds, 0);
}

void
arip_frame_decoder_free (AripFrameDecoder *self)
{
  if (self == NULL)
    return;
  close_queued_fds (self);
  g_array_unref (self->fds);
  g_free (self->buf);
  g_clear_error (&self->error);
  g_free (self);
}

static gboolean
peek_header (AripFrameDecoder *self,
             FrameHeader      *header)
{
  if (self->len - self->pos < ARIP_FRAME_HEADER_SIZE)
    return FALSE;
  memcpy (header, self->buf + self->pos, sizeof *header);
  return TRUE;
}

static void
broken (AripFrameDecoder *self)
{
  /* Nothing after a broken frame can be trusted. */
  close_queued_fds (self);
  g_clear_pointer (&self->buf, g_free);
  self->cap = self->len = self->pos = 0;
}

static void
out_of_memory (AripFrameDecoder *self,
               gsize             size)
{
  g_autofree char *what = g_format_size_full (size, G_FORMAT_SIZE_LONG_FORMAT);

  if (self->error != NULL)
    return;
  self->error = g_error_new (ARIP_ERROR, ARIP_ERROR_NO_MEMORY,
                             _("there is not enough memory in this process for a frame of %s"),
                             what);
  broken (self);
}

guint8 *
arip_frame_decoder_prepare (AripFrameDecoder *self,
                            gsize            *size)
{
  if (self->error != NULL)
    {
      *size = 0;
      return NULL;
    }

  gsize buffered = self->len - self->pos;
  gsize want = READ_CHUNK;
  FrameHeader header;

  /* Once a large frame's header is in, read more of it at a time; but never
   * reserve more than we already hold plus a chunk, so a lying header
   * cannot make us allocate memory for bytes that never come. */
  if (peek_header (self, &header) && header.size <= self->max_frame_size)
    {
      gsize total = ARIP_FRAME_HEADER_SIZE + (gsize) header.size;

      if (total > buffered && total - buffered > READ_CHUNK)
        want = MIN (total - buffered, MAX ((gsize) READ_CHUNK, buffered));
    }

  /* Grow (or compact) only once less than half of what we want is free:
   * the buffer then doubles instead of being copied on every read. */
  if (self->pos > 0 && (buffered == 0 || self->pos >= self->cap / 2 ||
                        self->cap - self->len < want / 2))
    {
      memmove (self->buf, self->buf + self->pos, buffered);
      self->pos = 0;
      self->len = buffered;
    }

  if (self->cap - self->len < want / 2)
    {
      /* What a child sends must never abort us: under a memory limit the
       * allocation may fail, and then the frame does. */
      guint8 *grown = g_try_realloc (self->buf, self->len + want);

      if (grown == NULL)
        {
          out_of_memory (self, self->len + want);
          *size = 0;
          return NULL;
        }
      self->buf = grown;
      self->cap = self->len + want;
    }

  *size = self->cap - self->len;
  return self->buf + self->len;
}

void
arip_frame_decoder_commit (AripFrameDecoder *self,
                           gsize             n_read)
{
  g_return_if_fail (n_read <= self->cap - self->len);
  self->len += n_read;
}

void
arip_frame_decoder_feed (AripFrameDecoder *self,
                         const guint8     *data,
                         gsize             len)
{
  while (len > 0)
    {
      gsize room;
      guint8 *dest = arip_frame_decoder_prepare (self, &room);
      gsize n = MIN (room, len);

      if (dest == NULL)
        return;   /* broken: next() says why */

      memcpy (dest, data, n);
      arip_frame_decoder_commit (self, n);
      data += n;
      len -= n;
    }
}

void
arip_frame_decoder_push_fds (AripFrameDecoder *self,
                             const gint       *fds,
                             guint             n_fds)
{
  g_array_append_vals (self->fds, fds, n_fds);
}

gboolean
arip_frame_decoder_has_partial (AripFrameDecoder *self)
{
  return self->len > self->pos;
}

static gboolean
fail (AripFrameDecoder  *self,
      GError           **error,
      const char        *format,
      ...) G_GNUC_PRINTF (3, 4);

static gboolean
fail (AripFrameDecoder  *self,
      GError           **error,
      const char        *format,
      ...)
{
  va_list args;

  va_start (args, format);
  self->error = g_error_new_valist (ARIP_ERROR, ARIP_ERROR_INVALID_DATA, format, args);
  va_end (args);

  broken (self);

  g_propagate_error (error, g_error_copy (self->error));
  return FALSE;
}

/* A serialized "v" in [start, end) of @bytes: the child's data, a zero
 * byte, and a single definite type. The child must be in normal form. */
static GVariant *
parse_variant (GBytes   *bytes,
               gsize     start,
               gsize     end,
               gsize     defer_size,
               gboolean *deferred)
{
  /* Even "v" holding nothing needs its zero byte and a type. (Checked
   * first: an empty payload's data pointer may be NULL.) */
  if (end <= start)
    return NULL;

  const char *data = g_bytes_get_data (bytes, NULL);
  const char *type_end = data + end;
  const char *type_start, *scanned = NULL;
  gsize zero = end;
  g_autoptr(GBytes) child_bytes = NULL;
  GVariant *child;

  while (zero > start && data[zero - 1] != '\0')
    zero--;
  if (zero == start)
    return NULL;              /* no separator */
  type_start = data + zero;   /* just after the zero byte */
  zero--;

  /* "()" is the usual "no arguments" and "no result". */
  if (type_end - type_start == 2 && type_start[0] == '(' && type_start[1] == ')' &&
      zero - start == 1 && data[start] == '\0')
    return arip_variant_unit ();

  if (type_start == type_end ||
      !g_variant_type_string_scan (type_start, type_end, &scanned) ||
      scanned != type_end ||
      !g_variant_type_is_definite ((const GVariantType *) type_start))
    return NULL;

  {
    g_autofree char *type = g_strndup (type_start, type_end - type_start);
    int trusted;

    child_bytes = g_bytes_new_from_bytes (bytes, start, zero - start);
    trusted = arip_normal_form_check (type, (const guint8 *) data + start, zero - start);
    if (trusted == 0)
      return NULL;
    child = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (type), child_bytes,
                                                          trusted == 1));
    if (trusted == 1)
      return child;
  }

  /* Checking a large value can take seconds: the caller does it where it
   * blocks nobody. Until then nothing reads the value. */
  if (defer_size > 0 && zero - start >= defer_size)
    {
      *deferred = TRUE;
      return child;
    }

  if (!g_variant_is_normal_form (child))
    {
      g_variant_unref (child);
      return NULL;
    }
  return child;
}

/* Takes the payload apart by hand for the kinds sent on every call,
 * checking what g_variant_is_normal_form() would; FALSE if it is not a
 * valid value of the kind's type in normal form. */
static gboolean
parse_payload (AripFrame *frame,
               GBytes    *bytes,
               gsize      defer_size)
{
  gsize size;
  const guint8 *data = g_bytes_get_data (bytes, &size);

  switch (frame->kind)
    {
    case ARIP_FRAME_HELLO:
      if (size != 8)
        return FALSE;
      memcpy (&frame->u32, data, 4);
      memcpy (&frame->i32, data + 4, 4);
      return TRUE;

    case ARIP_FRAME_STATE:
      if (size != 4)
        return FALSE;
      memcpy (&frame->u32, data, 4);
      return TRUE;

    case ARIP_FRAME_PROGRESS:
      if (size != 8)
        return FALSE;
      memcpy (&frame->dbl, data, 8);
      return TRUE;

    case ARIP_FRAME_CONSUMED:
      {
        guint64 consumed;

        if (size != 8)
          return FALSE;
        memcpy (&consumed, data, 8);
        frame->memfd_size = consumed;
        return TRUE;
      }

    case ARIP_FRAME_RESULT:
    case ARIP_FRAME_MESSAGE:
      /* "(v)" is laid out as its only member. */
      frame->value = parse_variant (bytes, 0, size, defer_size, &frame->needs_check);
      return frame->value != NULL;

    case ARIP_FRAME_CALL:
      {
        /* "(sv)": string, zero padding to 8, variant, and the end of the
         * string as a little-endian framing offset of the minimal width
         * for the container's size. */
        gsize offset_size = size > G_MAXUINT32 ? 8 : size > G_MAXUINT16 ? 4 : size > G_MAXUINT8 ? 2 : 1;
        guint64 string_end = 0;
        gsize variant_start, body_end;

        if (size < offset_size)
          return FALSE;
        body_end = size - offset_size;
        for (gsize i = 0; i < offset_size; i++)
          string_end |= (guint64) data[body_end + i] << (8 * i);

        if (string_end < 1 || string_end > body_end ||
            data[string_end - 1] != '\0' ||
            memchr (data, '\0', string_end - 1) != NULL ||
            !g_utf8_validate ((const char *) data, string_end - 1, NULL))
          return FALSE;

        variant_start = (string_end + 7) & ~(gsize) 7;
        if (variant_start > body_end)
          return FALSE;
        for (gsize i = string_end; i < variant_start; i++)
          if (data[i] != 0)
            return FALSE;

        frame->value = parse_variant (bytes, variant_start, body_end, defer_size,
                                      &frame->needs_check);
        if (frame->value == NULL)
          return FALSE;
        frame->function_owned = g_strndup ((const char *) data, string_end - 1);
        frame->function = frame->function_owned;
        return TRUE;
      }

    case ARIP_FRAME_REQUEST:
      /* "(uutv)": serial, op and object at fixed places, then the
       * argument, the last member, with no framing offset. */
      if (size < 16)
        return FALSE;
      memcpy (&frame->u32, data, 4);
      memcpy (&frame->i32, data + 4, 4);
      memcpy (&frame->u64, data + 8, 8);
      frame->value = parse_variant (bytes, 16, size, defer_size, &frame->needs_check);
      return frame->value != NULL;

    case ARIP_FRAME_REPLY:
      /* "(ubv)": serial, a boolean, zero padding to 8, the value. */
      if (size < 8 || data[4] > 1 || data[5] != 0 || data[6] != 0 || data[7] != 0)
        return FALSE;
      memcpy (&frame->u32, data, 4);
      frame->i32 = data[4];
      frame->value = parse_variant (bytes, 8, size, defer_size, &frame->needs_check);
      return frame->value != NULL;

    case ARIP_FRAME_ERROR:
    default:
      return TRUE;   /* the payload is checked as a whole */
    }
}

static gboolean
kind_is_memfd (guint kind)
{
  return kind == ARIP_FRAME_RESULT_MEMFD || kind == ARIP_FRAME_MESSAGE_MEMFD ||
         kind == ARIP_FRAME_CALL_MEMFD;
}

/* Breaks the stream with @reason (consumed) as the error. */
static gboolean
fail_with (AripFrameDecoder  *self,
           GError           **error,
           GError            *reason)
{
  g_clear_error (&self->error);
  self->error = reason;
  broken (self);
  g_propagate_error (error, g_error_copy (self->error));
  return FALSE;
}

/* A memfd frame: "(ts)" or "(sts)" names the value's size and type; its
 * bytes are the memfd @fd (consumed), which must be sealed. The frame
 * becomes the RESULT, MESSAGE or CALL frame it stands for, whose value is
 * the mapping. FALSE with @error when the memfd is wrong, without when
 * the payload is. */
static gboolean
parse_memfd_payload (AripFrameDecoder  *self,
                     AripFrame         *frame,
                     GBytes            *payload_bytes,
                     gint               fd,
                     GError           **error)
{
  g_autoptr(GVariant) payload =
    g_variant_ref_sink (g_variant_new_from_bytes (arip_frame_kind_get_type (frame->kind),
                                                  payload_bytes, FALSE));
  g_autoptr(GBytes) bytes = NULL;
  const char *function = NULL, *type;
  const char *scanned = NULL;
  guint64 size;
  int trusted;

  if (!g_variant_is_normal_form (payload))
    {
      close (fd);
      return FALSE;
    }
  if (frame->kind == ARIP_FRAME_CALL_MEMFD)
    g_variant_get (payload, "(&st&s)", &function, &size, &type);
  else
    g_variant_get (payload, "(t&s)", &size, &type);

  if (!g_variant_type_string_scan (type, NULL, &scanned) || *scanned != '\0' ||
      !g_variant_type_is_definite ((const GVariantType *) type) ||
      (function != NULL && !g_utf8_validate (function, -1, NULL)))
    {
      close (fd);
      return FALSE;
    }
  if (size > self->max_frame_size)
    {
      close (fd);
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                   _("a value of %llu bytes, more than the limit of %u bytes"),
                   (unsigned long long) size, (guint) self->max_frame_size);
      return FALSE;
    }

  bytes = arip_memfd_map (fd, size, error);
  if (bytes == NULL)
    return FALSE;
  frame->memfd_size = size;

  /* The same checks as for a value that came through the socket. */
  trusted = arip_normal_form_check (type, g_bytes_get_data (bytes, NULL), (gsize) size);
  if (trusted == 0)
    {
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                   _("a %s frame whose value is not in normal form"),
                   arip_frame_kind_to_string (frame->kind));
      return FALSE;
    }
  frame->value = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (type), bytes,
                                                               trusted == 1));
  if (trusted != 1)
    {
      if (!self->keep_payload && self->defer_check_size > 0 && size >= self->defer_check_size)
        frame->needs_check = TRUE;
      else if (!g_variant_is_normal_form (frame->value))
        {
          g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                       _("a %s frame whose value is not in normal form"),
                       arip_frame_kind_to_string (frame->kind));
          return FALSE;
        }
    }

  switch (frame->kind)
    {
    case ARIP_FRAME_RESULT_MEMFD:
      frame->kind = ARIP_FRAME_RESULT;
      break;
    case ARIP_FRAME_MESSAGE_MEMFD:
      frame->kind = ARIP_FRAME_MESSAGE;
      break;
    case ARIP_FRAME_CALL_MEMFD:
    default:
      frame->kind = ARIP_FRAME_CALL;
      frame->function_owned = g_strdup (function);
      frame->function = frame->function_owned;
      break;
    }
  return TRUE;
}

gboolean
arip_frame_decoder_next (AripFrameDecoder  *self,
                         AripFrame        **frame,
                         GError           **error)
{
  FrameHeader header;
  gsize total;
  g_autoptr(GBytes) payload_bytes = NULL;
  g_autoptr(GVariant) payload = NULL;
  AripFrame *result;

  *frame = NULL;

  if (self->error != NULL)
    {
      g_propagate_error (error, g_error_copy (self->error));
      return FALSE;
    }

  if (self->fds->len > self->max_fds)
    return fail (self, error, _("more file descriptors arrived (%u) than any frame announced"),
                 self->fds->len);

  if (!peek_header (self, &header))
    return TRUE;

  if (!kind_is_valid (header.kind))
    return fail (self, error, _("a frame of unknown kind %u"), header.kind);
  if (header.size > self->max_frame_size)
    return fail (self, error, _("a %s frame of %u bytes, more than the limit of %u bytes"),
                 arip_frame_kind_to_string (header.kind), header.size, (guint) self->max_frame_size);
  if (header.n_fds > self->max_fds)
    return fail (self, error, _("a %s frame announcing %u file descriptors, more than the limit of %u"),
                 arip_frame_kind_to_string (header.kind), header.n_fds, self->max_fds);
  /* Known from the header: descriptors a frame may not carry are never
   * held while the rest of it is awaited. */
  if (header.kind != ARIP_FRAME_RESULT && header.kind != ARIP_FRAME_RESULT_MEMFD &&
      header.n_fds > self->max_other_fds + (kind_is_memfd (header.kind) ? 1 : 0))
    return fail (self, error, _("a %s frame announcing %u file descriptors, more than the limit of %u"),
                 arip_frame_kind_to_string (header.kind), header.n_fds, self->max_other_fds);


  total = ARIP_FRAME_HEADER_SIZE + (gsize) header.size;
  if (self->len - self->pos < total)
    return TRUE;

  if (header.n_fds > self->fds->len)
    return fail (self, error, _("a %s frame announcing %u file descriptors of which %u arrived"),
                 arip_frame_kind_to_string (header.kind), header.n_fds, self->fds->len);

  if (self->pos == 0 && self->len == total && header.size >= READ_CHUNK)
    {
      /* A large frame that fills the buffer: hand the buffer over instead
       * of copying it. The payload stays 8-byte aligned. */
      g_autoptr(GBytes) whole = g_bytes_new_take (self->buf, total);

      self->buf = NULL;
      self->cap = self->len = self->pos = 0;
      payload_bytes = g_bytes_new_from_bytes (whole, ARIP_FRAME_HEADER_SIZE, header.size);
    }
  else
    {
      guint8 *copy = header.size > 0 ? g_try_malloc (header.size) : NULL;

      if (header.size > 0 && copy == NULL)
        {
          out_of_memory (self, header.size);
          g_propagate_error (error, g_error_copy (self->error));
          return FALSE;
        }
      if (header.size > 0)
        memcpy (copy, self->buf + self->pos + ARIP_FRAME_HEADER_SIZE, header.size);
      payload_bytes = g_bytes_new_take (copy, header.size);
      self->pos += total;
    }

  result = g_new0 (AripFrame, 1);
  result->kind = header.kind;

  if (kind_is_memfd (header.kind))
    {
      g_autoptr(GError) local_error = NULL;
      gint fd;

      /* The memfd is the last descriptor; those before go with the value. */
      if (header.n_fds < 1)
        {
          arip_frame_free (result);
          return fail (self, error, _("a %s frame with its value in a memfd, carrying %u descriptors"),
                       arip_frame_kind_to_string (header.kind), header.n_fds);
        }
      fd = g_array_index (self->fds, gint, header.n_fds - 1);
      if (header.n_fds > 1)
        result->fds = g_unix_fd_list_new_from_array ((gint *) self->fds->data, header.n_fds - 1);
      g_array_remove_range (self->fds, 0, header.n_fds);
      if (!parse_memfd_payload (self, result, payload_bytes, fd, &local_error))
        {
          if (local_error == NULL)
            goto invalid;
          arip_frame_free (result);
          return fail_with (self, error, g_steal_pointer (&local_error));
        }
      *frame = result;
      return TRUE;
    }

  if (!parse_payload (result, payload_bytes,
                      self->keep_payload ? 0 : self->defer_check_size))
    goto invalid;

  /* The whole payload as a GVariant: always for errors, which are taken
   * apart from it; for other kinds only when asked, as the parts are
   * already there. */
  if (kind_keeps_payload (header.kind) || self->keep_payload)
    {
      payload = g_variant_ref_sink (g_variant_new_from_bytes (arip_frame_kind_get_type (header.kind),
                                                              payload_bytes, FALSE));
      if (!g_variant_is_normal_form (payload))
        goto invalid;
      result->payload = g_steal_pointer (&payload);
    }

  if (header.n_fds > 0)
    {
      result->fds = g_unix_fd_list_new_from_array ((gint *) self->fds->data, header.n_fds);
      g_array_remove_range (self->fds, 0, header.n_fds);
    }

  *frame = result;
  return TRUE;

invalid:
  arip_frame_free (result);
  return fail (self, error, _("a %s frame whose payload is not a valid “%s” value"),
               arip_frame_kind_to_string (header.kind), frame_kinds[header.kind].type);
}

GVariant *
arip_frame_get_payload (AripFrame *frame)
{
  if (frame->payload != NULL)
    return frame->payload;

  switch (frame->kind)
    {
    case ARIP_FRAME_HELLO:
      frame->payload = g_variant_new ("(ui)", frame->u32, frame->i32);
      break;
    case ARIP_FRAME_STATE:
      frame->payload = g_variant_new ("(u)", frame->u32);
      break;
    case ARIP_FRAME_PROGRESS:
      frame->payload = g_variant_new ("(d)", frame->dbl);
      break;
    case ARIP_FRAME_CONSUMED:
      frame->payload = g_variant_new ("(t)", frame->memfd_size);
      break;
    case ARIP_FRAME_RESULT:
    case ARIP_FRAME_MESSAGE:
      frame->payload = g_variant_new ("(v)", frame->value);
      break;
    case ARIP_FRAME_CALL:
      frame->payload = g_variant_new ("(sv)", frame->function, frame->value);
      break;
    case ARIP_FRAME_REQUEST:
      frame->payload = g_variant_new ("(uutv)", frame->u32, (guint32) frame->i32, frame->u64,
                                      frame->value);
      break;
    case ARIP_FRAME_REPLY:
      frame->payload = g_variant_new ("(ubv)", frame->u32, frame->i32 != 0, frame->value);
      break;
    case ARIP_FRAME_ERROR:
    default:
      g_return_val_if_reached (NULL);
    }

  g_variant_ref_sink (frame->payload);
  return frame->payload;
}

void
arip_frame_decoder_set_keep_payload (AripFrameDecoder *self,
                                     gboolean          keep_payload)
{
  self->keep_payload = !!keep_payload;
}

void
arip_frame_decoder_set_defer_check (AripFrameDecoder *self,
                                    gsize             min_size)
{
  self->defer_check_size = min_size;
}

gboolean
arip_frame_check (AripFrame *frame)
{
  int normal;

  if (!frame->needs_check)
    return TRUE;
  normal = arip_normal_form_check_full (g_variant_get_type_string (frame->value),
                                        g_variant_get_data (frame->value),
                                        g_variant_get_size (frame->value));
  if (normal == 0 || (normal < 0 && !g_variant_is_normal_form (frame->value)))
    return FALSE;
  /* Trusted from now on: GLib would check it again, slowly, if it is
   * sent on or put in a container. */
  {
    g_autoptr(GBytes) bytes = g_variant_get_data_as_bytes (frame->value);
    GVariant *trusted = g_variant_new_from_bytes (g_variant_get_type (frame->value), bytes, TRUE);

    g_variant_unref (frame->value);
    frame->value = g_variant_ref_sink (trusted);
  }
  frame->needs_check = FALSE;
  return TRUE;
}
