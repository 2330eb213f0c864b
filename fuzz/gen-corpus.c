/* gen-corpus.c: writes the seed corpus of the frame decoder's fuzzer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Usage: gen-corpus DIRECTORY
 *
 * Every seed is valid: frames made by arip_frame_encode(), the way a real
 * worker sends them, in the input format fuzz-frame-decoder.c reads (two
 * control bytes, then the stream). The files are committed in
 * fuzz/corpus/frame-decoder/; `build-aux/dev fuzz-corpus` writes them again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gio/gio.h>

#include "arip-channel-private.h"
#include "arip-error.h"
#include "arip-types.h"

static const char *out_dir;
static guint n_written;

/* Control byte 0: initial descriptors, chunk size index, prepare/commit. */
#define CTL0(fds, chunk, prepare) ((guint8) ((fds) | ((chunk) << 3) | ((prepare) ? 0x80 : 0)))
/* Control byte 1: repetitions - 1, a descriptor after each chunk. */
#define CTL1(reps, fd_per_chunk) ((guint8) (((reps) - 1) | ((fd_per_chunk) ? 0x20 : 0)))
/* ... and frames without their payload, as a channel decodes them. */
#define CHANNEL_MODE 0x40

static void
append_frame (GByteArray    *stream,
              AripFrameKind  kind,
              guint          n_fds,
              const char    *format,
              ...)
{
  g_autoptr(GBytes) bytes = NULL;
  GVariant *payload;
  va_list args;
  gsize len;
  const guint8 *data;

  va_start (args, format);
  payload = g_variant_new_va (format, NULL, &args);
  va_end (args);

  bytes = arip_frame_encode (kind, payload, n_fds);
  g_assert (bytes != NULL);
  data = g_bytes_get_data (bytes, &len);
  g_byte_array_append (stream, data, len);
}

static void
append_parsed (GByteArray    *stream,
               AripFrameKind  kind,
               const char    *text)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;
  /* Not floating: encode takes a reference of its own and drops it. */
  g_autoptr(GVariant) payload = g_variant_parse (arip_frame_kind_get_type (kind), text, NULL, NULL, &error);
  gsize len;
  const guint8 *data;

  g_assert_no_error (error);
  bytes = arip_frame_encode (kind, payload, 0);
  data = g_bytes_get_data (bytes, &len);
  g_byte_array_append (stream, data, len);
}

static void
write_seed (const char   *name,
            guint8        ctl0,
            guint8        ctl1,
            GByteArray   *stream)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename (out_dir, name, NULL);
  g_autoptr(GByteArray) seed = g_byte_array_new ();

  g_byte_array_append (seed, &ctl0, 1);
  g_byte_array_append (seed, &ctl1, 1);
  g_byte_array_append (seed, stream->data, stream->len);

  if (!g_file_set_contents (path, (const char *) seed->data, seed->len, &error))
    {
      g_printerr ("gen-corpus: %s\n", error->message);
      exit (1);
    }
  n_written++;
}

/* What a worker says during a call that succeeds. */
static GByteArray *
successful_call (void)
{
  GByteArray *s = g_byte_array_new ();

  append_frame (s, ARIP_FRAME_HELLO, 0, "(ui)", (guint32) ARIP_PROTOCOL_VERSION, (gint32) 4242);
  append_frame (s, ARIP_FRAME_STATE, 0, "(u)", (guint32) ARIP_STATE_BOOTING);
  append_frame (s, ARIP_FRAME_STATE, 0, "(u)", (guint32) ARIP_STATE_STARTED);
  append_frame (s, ARIP_FRAME_STATE, 0, "(u)", (guint32) ARIP_STATE_EXECUTING);
  append_parsed (s, ARIP_FRAME_MESSAGE, "(<{'step': <uint32 1>, 'note': <'halfway'>}>,)");
  append_frame (s, ARIP_FRAME_PROGRESS, 0, "(d)", 0.5);
  append_parsed (s, ARIP_FRAME_RESULT, "(<(uint64 832040, 'done', [1.5, 2.5], @ay [0x01, 0x02])>,)");
  return s;
}

int
main (int argc, char **argv)
{
  static const struct {
    const char    *name;
    AripFrameKind  kind;
    const char    *text;
  } singles[] = {
    { "hello", ARIP_FRAME_HELLO, "(uint32 1, 1234)" },
    { "state-booting", ARIP_FRAME_STATE, "(uint32 3,)" },
    { "call", ARIP_FRAME_CALL, "('fib', <(int32 30,)>)" },
    { "result-tuple", ARIP_FRAME_RESULT, "(<(uint64 832040, 'done', [1.5, 2.5])>,)" },
    { "result-unit", ARIP_FRAME_RESULT, "(<()>,)" },
    { "result-nested", ARIP_FRAME_RESULT,
      "(<[{'a': <[<(int16 -1, byte 0x7f, true)>]>}, @a{sv} {}]>,)" },
    { "result-maybe", ARIP_FRAME_RESULT, "(<@mms just nothing>,)" },
    { "result-paths", ARIP_FRAME_RESULT, "(<(objectpath '/org/arip/x', signature 'a{sv}', [@mi 5, nothing])>,)" },
    { "result-strings", ARIP_FRAME_RESULT, "(<['', 'ünïcödé', '\\u2603 snowman', 'tab\\there']>,)" },
    { "error-io", ARIP_FRAME_ERROR, "('g-io-error-quark', 1, 'Not found')" },
    { "error-cancelled", ARIP_FRAME_ERROR, "('g-io-error-quark', 19, 'Operation was cancelled')" },
    { "error-arip", ARIP_FRAME_ERROR, "('arip-error-quark', 1, 'No function named “x”')" },
    { "error-custom", ARIP_FRAME_ERROR, "('my-app_error.domain-42', -7, '')" },
    { "message-dict", ARIP_FRAME_MESSAGE, "(<{'key': <'value'>}>,)" },
    { "message-nothing", ARIP_FRAME_MESSAGE, "(<@ms nothing>,)" },
    { "progress-zero", ARIP_FRAME_PROGRESS, "(0.0,)" },
    { "progress-one", ARIP_FRAME_PROGRESS, "(1.0,)" },
  };
  g_autoptr(GByteArray) call = NULL;

  if (argc != 2)
    {
      g_printerr ("usage: %s DIRECTORY\n", argv[0]);
      return 2;
    }
  out_dir = argv[1];
  if (g_mkdir_with_parents (out_dir, 0755) < 0)
    {
      g_printerr ("gen-corpus: cannot create %s\n", out_dir);
      return 1;
    }

  for (guint i = 0; i < G_N_ELEMENTS (singles); i++)
    {
      g_autoptr(GByteArray) s = g_byte_array_new ();

      g_autofree char *channel_name = g_strconcat (singles[i].name, "-channel", NULL);

      append_parsed (s, singles[i].kind, singles[i].text);
      write_seed (singles[i].name, CTL0 (0, 0, FALSE), CTL1 (1, FALSE), s);
      write_seed (channel_name, CTL0 (0, 0, FALSE), CTL1 (1, FALSE) | CHANNEL_MODE, s);
    }

  /* A whole call, fed at once, a byte at a time, in odd chunks, through
   * prepare/commit. */
  call = successful_call ();
  write_seed ("call-success", CTL0 (0, 0, FALSE), CTL1 (1, FALSE), call);
  write_seed ("call-success-bytewise", CTL0 (0, 1, FALSE), CTL1 (1, FALSE), call);
  write_seed ("call-success-chunks-7", CTL0 (0, 5, FALSE), CTL1 (1, FALSE), call);
  write_seed ("call-success-prepare", CTL0 (0, 8, TRUE), CTL1 (1, FALSE), call);
  write_seed ("call-success-repeated", CTL0 (0, 0, FALSE), CTL1 (32, FALSE), call);
  write_seed ("call-success-channel", CTL0 (0, 0, FALSE), CTL1 (1, FALSE) | CHANNEL_MODE, call);
  write_seed ("call-success-channel-chunks-9", CTL0 (0, 7, TRUE), CTL1 (2, FALSE) | CHANNEL_MODE, call);

  /* A call that fails. */
  {
    g_autoptr(GByteArray) s = g_byte_array_new ();

    append_frame (s, ARIP_FRAME_HELLO, 0, "(ui)", (guint32) ARIP_PROTOCOL_VERSION, (gint32) 77);
    append_frame (s, ARIP_FRAME_STATE, 0, "(u)", (guint32) ARIP_STATE_BOOTING);
    append_frame (s, ARIP_FRAME_ERROR, 0, "(sis)", "arip-error-quark",
                  (gint32) ARIP_ERROR_UNKNOWN_FUNCTION, "No function named “nope”");
    write_seed ("call-unknown-function", CTL0 (0, 0, FALSE), CTL1 (1, FALSE), s);
  }

  /* Frames with descriptors: pushed before, or one per chunk. */
  {
    g_autoptr(GByteArray) s = g_byte_array_new ();

    append_frame (s, ARIP_FRAME_MESSAGE, 1, "(v)", g_variant_new_handle (0));
    append_frame (s, ARIP_FRAME_MESSAGE, 2, "(v)", g_variant_new ("(hh)", 0, 1));
    write_seed ("message-fds", CTL0 (3, 0, FALSE), CTL1 (1, FALSE), s);
    write_seed ("message-fds-per-chunk", CTL0 (0, 11, FALSE), CTL1 (4, TRUE), s);
  }
  {
    g_autoptr(GByteArray) s = g_byte_array_new ();

    append_frame (s, ARIP_FRAME_RESULT, 1, "(v)", g_variant_new ("(sh)", "fd", 0));
    write_seed ("result-fd", CTL0 (1, 0, TRUE), CTL1 (1, FALSE), s);
  }

  /* A frame larger than one 64 KiB read: the stream repeated 32 times is a
   * single MESSAGE whose payload is a `v` holding an `ay` (any bytes,
   * then "\0ay"). */
  {
    g_autoptr(GByteArray) unit = g_byte_array_new ();
    const guint reps = 32;
    const gsize filler = 3000;
    gsize unit_len = ARIP_FRAME_HEADER_SIZE + filler + 3;
    struct { guint32 size; guint16 kind; guint16 n_fds; } header = {
      (guint32) (reps * unit_len - ARIP_FRAME_HEADER_SIZE), ARIP_FRAME_MESSAGE, 0
    };

    g_byte_array_append (unit, (const guint8 *) &header, sizeof header);
    for (gsize i = 0; i < filler; i++)
      {
        guint8 b = (guint8) (i * 7);
        g_byte_array_append (unit, &b, 1);
      }
    g_byte_array_append (unit, (const guint8 *) "\0ay", 3);
    write_seed ("large-message", CTL0 (0, 0, FALSE), CTL1 (reps, FALSE), unit);
    write_seed ("large-message-prepare", CTL0 (0, 14, TRUE), CTL1 (reps, FALSE), unit);
    write_seed ("large-message-channel", CTL0 (0, 11, FALSE), CTL1 (reps, FALSE) | CHANNEL_MODE, unit);
  }

  /* A complete frame followed by half of another. */
  {
    g_autoptr(GByteArray) s = g_byte_array_new ();

    append_frame (s, ARIP_FRAME_PROGRESS, 0, "(d)", 0.25);
    append_frame (s, ARIP_FRAME_RESULT, 0, "(v)", g_variant_new_string ("cut short here"));
    g_byte_array_set_size (s, s->len - 9);
    write_seed ("truncated-tail", CTL0 (0, 3, FALSE), CTL1 (1, FALSE), s);
  }

  printf ("gen-corpus: wrote %u seeds to %s\n", n_written, out_dir);
  return 0;
}
