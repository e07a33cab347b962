// Copyright 2026 the wirestream authors. MIT license.
// The demo's media: a WAV file made at startup (so the repository carries no binary), long
// enough (10 minutes, 26 MB) that a player seeks in it with range requests rather than having
// it all buffered.

/** The sample rate of the tone, in Hz (16-bit mono PCM). */
const RATE = 22_050;

/**
 * Writes a WAV file of `seconds` of a tone that steps up a semitone every second, so that
 * where a player is in it can be heard.
 *
 * @returns The file's size in bytes.
 */
export async function writeTone(path: string, seconds = 600): Promise<number> {
  const samples = RATE * seconds;
  const bytes = new Uint8Array(44 + samples * 2);
  const view = new DataView(bytes.buffer);
  const ascii = (at: number, text: string) => {
    for (let i = 0; i < text.length; i++) bytes[at + i] = text.charCodeAt(i);
  };
  // RIFF header, "fmt " chunk (PCM, mono, 16-bit), "data" chunk.
  ascii(0, "RIFF");
  view.setUint32(4, 36 + samples * 2, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, RATE, true);
  view.setUint32(28, RATE * 2, true); // bytes per second
  view.setUint16(32, 2, true); // block align
  view.setUint16(34, 16, true); // bits per sample
  ascii(36, "data");
  view.setUint32(40, samples * 2, true);
  let phase = 0;
  for (let i = 0; i < samples; i++) {
    const second = Math.floor(i / RATE);
    const frequency = 220 * 2 ** ((second % 24) / 12);
    phase += (2 * Math.PI * frequency) / RATE;
    view.setInt16(44 + i * 2, Math.round(Math.sin(phase) * 6000), true);
  }
  await Deno.writeFile(path, bytes);
  return bytes.length;
}
