/* fuzz-frame-decoder.c: libFuzzer target for the parent's frame decoder
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The decoder (arip_frame_decoder_*, arip-frame.c) is the code that turns
 * the bytes a child writes into frames, GVariants and errors: everything a
 * hostile child can reach in the parent goes through it. This target feeds
 * it arbitrary bytes and checks, for every input:
 *
 *   - no crash, no sanitizer report, no leak (libFuzzer + ASan/LSan/UBSan);
 *   - every frame it returns has a valid kind, a payload of the kind's type
 *     in normal form (checked again from a copy of its bytes, as untrusted
 *     data: the decoder may hand out values GLib takes as trusted), parts
 *     (value, function, numbers) that agree with the payload, exactly the
 *     descriptors its header announced, and re-encodes (arip_frame_encode)
 *     to the very bytes it was decoded from;
 *   - every string in a payload is valid UTF-8, every object path and
 *     signature valid (the whole value is walked);
 *   - an ERROR frame becomes a GError or is refused (arip_frame_payload_to_error);
 *   - once the decoder fails it keeps failing, with the same error;
 *   - every descriptor handed to it is closed once it and its frames are
 *     freed;
 *   - memory (under ASan, which can count it), whatever a header claims:
 *     no single allocation is larger than 2 × the bytes fed so far + 64 KiB
 *     (the decoder's buffer holds what it was fed plus room for one read, and
 *     never reserves more than it holds), and the live heap never grows by
 *     more than 5 × the bytes fed + 256 KiB (the buffer, the old buffer
 *     while realloc() copies it, and the one frame alive at a time).
 *
 * Input format (so that one input can drive every entry point):
 *
 *   byte 0    bits 0-2  descriptors to push before the first byte (0-7)
 *             bits 3-6  chunk size index into chunk_sizes[] (0: all at once;
 *                       at least 1/512 of the stream)
 *             bit  7    feed through prepare()/commit() instead of feed()
 *   byte 1    bits 0-4  the stream is the rest of the input repeated 1-32
 *                       times (so small inputs reach large frames)
 *             bit  5    push one more descriptor after every chunk
 *             bit  6    do not keep payloads (what a channel does: frames
 *                       carry only their parts)
 *   byte 2..  the stream, as a child would write it on the channel
 *
 * The same file builds two ways: with -fsanitize=fuzzer (the libFuzzer
 * binary, see fuzz/meson.build) and with fuzz/replay.c as its main(), a
 * plain test that runs the committed corpus and regression inputs in every
 * build (including the ASan and valgrind ones).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "arip-channel-private.h"
#include "arip-error.h"

#include "fuzz-frame-decoder.h"

#if defined(__has_feature)
# if __has_feature(address_sanitizer)
#  define FUZZ_HAVE_ASAN 1
# endif
#endif
#if defined(__SANITIZE_ADDRESS__)
# define FUZZ_HAVE_ASAN 1
#endif

#define MAX_PUSHED_FDS 64
#define MAX_CHUNKS 512
#define FRAME_HEADER ARIP_FRAME_HEADER_SIZE

static const gsize chunk_sizes[16] = {
  0, 1, 2, 3, 5, 7, 8, 9, 13, 64, 255, 4096, 8192, 65535, 65536, 65537,
};

/* ---------------------------------------------------------------------- */
/* Heap accounting (ASan builds only)                                     */

#ifdef FUZZ_HAVE_ASAN
/* Declared here: GCC ships no <sanitizer/allocator_interface.h>. */
int    __sanitizer_install_malloc_and_free_hooks (void (*malloc_hook) (const volatile void *, size_t),
                                                  void (*free_hook) (const volatile void *));
size_t __sanitizer_get_allocated_size (const volatile void *p);

static gboolean counting;
static gssize live_bytes;
static gssize peak_bytes;
static gsize largest_alloc;

static void
on_malloc (const volatile void *ptr, size_t size)
{
  if (!counting)
    return;
  if (size > largest_alloc)
    largest_alloc = size;
  live_bytes += (gssize) size;
  if (live_bytes > peak_bytes)
    peak_bytes = live_bytes;
}

static void
on_free (const volatile void *ptr)
{
  if (!counting || ptr == NULL)
    return;
  live_bytes -= (gssize) __sanitizer_get_allocated_size (ptr);
}

static void
count_start (void)
{
  static gboolean installed;

  if (!installed)
    {
      __sanitizer_install_malloc_and_free_hooks (on_malloc, on_free);
      installed = TRUE;
    }
  live_bytes = peak_bytes = 0;
  largest_alloc = 0;
  counting = TRUE;
}

static void count_pause (void)  { counting = FALSE; }
static void count_resume (void) { counting = TRUE; }
static void count_stop (void)   { counting = FALSE; }
static gssize count_peak (void) { return peak_bytes; }
static gsize count_largest (void) { return largest_alloc; }
#else
static void count_start (void)  { }
static void count_pause (void)  { }
static void count_resume (void) { }
static void count_stop (void)   { }
static gssize count_peak (void) { return 0; }
static gsize count_largest (void) { return 0; }
#endif

/* ---------------------------------------------------------------------- */
/* Checks                                                                 */

#define check(cond)                                                             \
  G_STMT_START {                                                                \
    if (G_UNLIKELY (!(cond)))                                                   \
      {                                                                         \
        g_printerr ("%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);    \
        abort ();                                                               \
      }                                                                         \
  } G_STMT_END

/* Whether @value's bytes are in normal form, judged from a copy: GLib
 * believes a value it was told is trusted without looking. */
static gboolean
really_normal (GVariant *value)
{
  g_autoptr(GBytes) copy = g_bytes_new (g_variant_get_data (value), g_variant_get_size (value));
  g_autoptr(GVariant) untrusted =
    g_variant_ref_sink (g_variant_new_from_bytes (g_variant_get_type (value), copy, FALSE));

  return g_variant_is_normal_form (untrusted);
}

/* Walks every value in @value, as code that uses a payload would. */
static void
walk (GVariant *value,
      guint     depth)
{
  const GVariantType *type = g_variant_get_type (value);

  check (depth <= 256);
  check (g_variant_is_normal_form (value));

  if (g_variant_type_is_basic (type))
    {
      switch (g_variant_classify (value))
        {
        case G_VARIANT_CLASS_STRING:
        case G_VARIANT_CLASS_OBJECT_PATH:
        case G_VARIANT_CLASS_SIGNATURE:
          {
            gsize len = 0;
            const char *s = g_variant_get_string (value, &len);

            check (s != NULL && strlen (s) == len);
            check (g_utf8_validate (s, len, NULL));
            if (g_variant_classify (value) == G_VARIANT_CLASS_OBJECT_PATH)
              check (g_variant_is_object_path (s));
            if (g_variant_classify (value) == G_VARIANT_CLASS_SIGNATURE)
              check (g_variant_is_signature (s));
          }
          break;
        case G_VARIANT_CLASS_DOUBLE:
          (void) g_variant_get_double (value);
          break;
        case G_VARIANT_CLASS_HANDLE:
          (void) g_variant_get_handle (value);
          break;
        default:
          /* Fixed-size integers and booleans: their bytes are their value. */
          check (g_variant_get_size (value) > 0);
          (void) g_variant_get_data (value);
          break;
        }
      return;
    }

  if (g_variant_is_container (value))
    {
      gsize n = g_variant_n_children (value);

      for (gsize i = 0; i < n; i++)
        {
          g_autoptr(GVariant) child = g_variant_get_child_value (value, i);

          if (g_variant_is_of_type (value, G_VARIANT_TYPE_VARIANT))
            check (g_variant_type_is_definite (g_variant_get_type (child)));
          walk (child, depth + 1);
        }
    }
}

/* The parts the decoder filled in say what the payload says. */
/* The value taken apart by hand is the payload's, as GLib sees it. */
static void
check_value (AripFrame *frame,
             GVariant  *inner)
{
  check (frame->value != NULL);
  check (g_variant_equal (frame->value, inner));
  check (g_str_equal (g_variant_get_type_string (frame->value),
                      g_variant_get_type_string (inner)));
  check (really_normal (frame->value));
}

static void
check_parts (AripFrame *frame,
             GVariant  *payload)
{
  switch (frame->kind)
    {
    case ARIP_FRAME_HELLO:
      {
        guint32 version;
        gint32 pid;

        g_variant_get (payload, "(ui)", &version, &pid);
        check (frame->u32 == version && frame->i32 == pid);
        check (frame->value == NULL);
      }
      break;
    case ARIP_FRAME_STATE:
      {
        guint32 state;

        g_variant_get (payload, "(u)", &state);
        check (frame->u32 == state);
        check (frame->value == NULL);
      }
      break;
    case ARIP_FRAME_PROGRESS:
      {
        gdouble progress;

        g_variant_get (payload, "(d)", &progress);
        /* Bit for bit: NaN is a value a child may send. */
        check (memcmp (&frame->dbl, &progress, sizeof progress) == 0);
        check (frame->value == NULL);
      }
      break;
    case ARIP_FRAME_RESULT:
    case ARIP_FRAME_MESSAGE:
    case ARIP_FRAME_CALL:
      {
        g_autoptr(GVariant) inner = NULL;

        if (frame->kind == ARIP_FRAME_CALL)
          {
            const char *function;

            g_variant_get (payload, "(&sv)", &function, &inner);
            check (frame->function != NULL && g_str_equal (frame->function, function));
          }
        else
          g_variant_get (payload, "(v)", &inner);
        check_value (frame, inner);
      }
      break;
    case ARIP_FRAME_REQUEST:
      {
        g_autoptr(GVariant) inner = NULL;
        guint32 serial, op;
        guint64 id;

        g_variant_get (payload, "(uutv)", &serial, &op, &id, &inner);
        check (frame->u32 == serial && (guint32) frame->i32 == op && frame->u64 == id);
        check_value (frame, inner);
      }
      break;
    case ARIP_FRAME_REPLY:
      {
        g_autoptr(GVariant) inner = NULL;
        guint32 serial;
        gboolean flag;

        g_variant_get (payload, "(ubv)", &serial, &flag, &inner);
        check (frame->u32 == serial && frame->i32 == flag);
        check_value (frame, inner);
      }
      break;
    case ARIP_FRAME_ERROR:
    default:
      check (frame->value == NULL);
      break;
    }
}

static void
check_frame (AripFrame    *frame,
             gboolean      keep_payload,
             const guint8 *stream,
             gsize         stream_len,
             gsize        *offset)
{
  g_autoptr(GBytes) again = NULL;
  g_autoptr(GVariant) normal = NULL;
  guint n_fds = frame->fds != NULL ? (guint) g_unix_fd_list_get_length (frame->fds) : 0;
  GVariant *payload;
  gsize size;
  gsize len;
  const guint8 *data;

  check (frame->kind >= ARIP_FRAME_HELLO && frame->kind <= ARIP_FRAME_LAST_KIND);
  /* ERROR frames always carry their payload; the others when asked to. */
  if (keep_payload || frame->kind == ARIP_FRAME_ERROR)
    check (frame->payload != NULL);
  payload = arip_frame_get_payload (frame);
  check (payload != NULL);
  size = g_variant_get_size (payload);
  check (g_variant_is_of_type (payload, arip_frame_kind_get_type (frame->kind)));
  check (g_variant_is_normal_form (payload));
  check (really_normal (payload));
  check_parts (frame, payload);
  check (frame->fds == NULL || n_fds > 0);
  check (n_fds <= ARIP_FRAME_MAX_FDS);
  check (strcmp (arip_frame_kind_to_string (frame->kind), "unknown") != 0);

  /* The frame is exactly the next bytes of the stream. */
  check (*offset + FRAME_HEADER + size <= stream_len);
  /* Not floating: encode takes a reference of its own and drops it. */
  again = arip_frame_encode (frame->kind, payload, n_fds);
  check (again != NULL);
  data = g_bytes_get_data (again, &len);
  check (len == FRAME_HEADER + size);
  check (memcmp (data, stream + *offset, len) == 0);
  *offset += len;

  normal = g_variant_get_normal_form (payload);
  check (g_variant_equal (normal, payload));

  walk (payload, 0);

  if (frame->kind == ARIP_FRAME_ERROR)
    {
      GError *error = arip_frame_payload_to_error (payload);

      if (error != NULL)
        {
          const char *domain;
          gint32 code;
          const char *message;

          g_variant_get (payload, "(&si&s)", &domain, &code, &message);
          check (error->message != NULL);
          /* The child's G_IO_ERROR_CANCELLED becomes ARIP_ERROR_CHILD_CANCELLED;
           * a domain beyond the ones this process may still create keeps
           * its name and code in the message; every other error arrives as
           * it was sent. */
          if (g_str_equal (domain, g_quark_to_string (G_IO_ERROR)) && code == G_IO_ERROR_CANCELLED)
            check (g_error_matches (error, ARIP_ERROR, ARIP_ERROR_CHILD_CANCELLED) &&
                   g_str_equal (error->message, message));
          else if (g_error_matches (error, ARIP_ERROR, ARIP_ERROR_UNKNOWN_DOMAIN) &&
                   !g_str_equal (domain, g_quark_to_string (ARIP_ERROR)))
            check (g_str_has_prefix (error->message, domain) &&
                   g_str_has_suffix (error->message, message) &&
                   g_quark_try_string (domain) == 0);
          else
            check (g_str_equal (g_quark_to_string (error->domain), domain) && error->code == code &&
                   g_str_equal (error->message, message));
          g_error_free (error);
        }
    }

  if (frame->kind == ARIP_FRAME_RESULT || frame->kind == ARIP_FRAME_MESSAGE)
    {
      g_autoptr(GVariant) inner = NULL;

      g_variant_get (payload, "(v)", &inner);
      check (g_variant_is_normal_form (inner));
    }

  for (guint i = 0; i < n_fds; i++)
    check (fcntl (g_unix_fd_list_peek_fds (frame->fds, NULL)[i], F_GETFD) >= 0);
}

/* Takes every frame the decoder has; FALSE once it failed. */
static gboolean
drain (AripFrameDecoder *decoder,
       gboolean          keep_payload,
       const guint8     *stream,
       gsize             stream_len,
       gsize            *offset,
       GError          **error_out)
{
  for (;;)
    {
      g_autoptr(GError) error = NULL;
      AripFrame *frame = NULL;

      if (!arip_frame_decoder_next (decoder, &frame, &error))
        {
          check (frame == NULL);
          check (error != NULL);
          check (error->domain == ARIP_ERROR && error->code == ARIP_ERROR_INVALID_DATA);
          check (g_utf8_validate (error->message, -1, NULL));
          g_propagate_error (error_out, g_steal_pointer (&error));
          return FALSE;
        }
      check (error == NULL);
      if (frame == NULL)
        return TRUE;

      /* What the caller does with a frame is not the decoder's memory. */
      count_pause ();
      check_frame (frame, keep_payload, stream, stream_len, offset);
      count_resume ();
      arip_frame_free (frame);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *input,
                        size_t         input_len)
{
  static int devnull = -1;
  g_autoptr(GByteArray) stream = NULL;
  g_autoptr(GError) failure = NULL;
  AripFrameDecoder *decoder;
  gint pushed[MAX_PUSHED_FDS];
  guint n_pushed = 0;
  gboolean use_prepare, fd_per_chunk, keep_payload;
  guint initial_fds, reps;
  gsize chunk, pos, offset = 0;

  if (input_len < 2)
    return 0;

  if (devnull < 0)
    {
      devnull = open ("/dev/null", O_RDONLY | O_CLOEXEC);
      check (devnull >= 0);
    }

  initial_fds = input[0] & 0x7;
  chunk = chunk_sizes[(input[0] >> 3) & 0xf];
  use_prepare = (input[0] & 0x80) != 0;
  reps = 1 + (input[1] & 0x1f);
  fd_per_chunk = (input[1] & 0x20) != 0;
  keep_payload = (input[1] & 0x40) == 0;

  stream = g_byte_array_sized_new ((input_len - 2) * reps);
  for (guint i = 0; i < reps; i++)
    g_byte_array_append (stream, input + 2, input_len - 2);
  if (chunk == 0)
    chunk = MAX (stream->len, 1);
  /* At most MAX_CHUNKS reads per input: feeding 100 KiB a byte at a time
   * exercises nothing more than 512 small reads do, and costs seconds
   * under ASan (which copies on every realloc). */
  chunk = MAX (chunk, stream->len / MAX_CHUNKS);

  count_start ();
  decoder = arip_frame_decoder_new (ARIP_FRAME_MAX_SIZE);
  arip_frame_decoder_set_keep_payload (decoder, keep_payload);

  for (guint i = 0; i < initial_fds; i++)
    {
      gint fd = dup (devnull);

      check (fd >= 0);
      pushed[n_pushed++] = fd;
      arip_frame_decoder_push_fds (decoder, &fd, 1);
    }

  for (pos = 0; pos < stream->len && failure == NULL; )
    {
      gsize n = MIN (chunk, stream->len - pos);

      if (use_prepare)
        {
          gsize room = 0;
          guint8 *dest = arip_frame_decoder_prepare (decoder, &room);

          /* The decoder always offers room, and never a whole lot more than
           * it holds plus one read. */
          check (dest != NULL && room > 0);
          n = MIN (n, room);
          memcpy (dest, stream->data + pos, n);
          arip_frame_decoder_commit (decoder, n);
        }
      else
        arip_frame_decoder_feed (decoder, stream->data + pos, n);
      pos += n;

      if (fd_per_chunk && n_pushed < MAX_PUSHED_FDS)
        {
          gint fd = dup (devnull);

          check (fd >= 0);
          pushed[n_pushed++] = fd;
          arip_frame_decoder_push_fds (decoder, &fd, 1);
        }

      drain (decoder, keep_payload, stream->data, stream->len, &offset, &failure);

      /* Memory is bounded by what came in, whatever a header says. */
      check (count_largest () <= 2 * pos + 64 * 1024 + 64);
      check (count_peak () <= (gssize) (5 * pos + 256 * 1024));
    }

  if (failure == NULL)
    {
      /* All fed: what is left is an incomplete frame, exactly. */
      check (arip_frame_decoder_has_partial (decoder) == (offset < stream->len));
      check (offset <= stream->len);
    }
  else
    {
      /* Broken for good, with the same error. */
      g_autoptr(GError) again = NULL;
      AripFrame *frame = NULL;

      check (!arip_frame_decoder_next (decoder, &frame, &again));
      check (frame == NULL);
      check (g_error_matches (again, failure->domain, failure->code));
      check (g_str_equal (again->message, failure->message));
    }

  arip_frame_decoder_free (decoder);
  count_stop ();

  /* Every descriptor given to the decoder was closed with it or with the
   * frame it was handed to. */
  for (guint i = 0; i < n_pushed; i++)
    check (fcntl (pushed[i], F_GETFD) < 0 && errno == EBADF);

  return 0;
}
