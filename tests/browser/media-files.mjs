// What the browser tests read of a received media file (a livestream, a recording), by ffprobe
// and ffmpeg.
import { spawnSync } from 'node:child_process';

/** The codecs and duration (s) of a media file, by ffprobe. */
export function probe(file) {
  const out = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name:format=duration', '-of', 'csv=p=0', file], { encoding: 'utf8' });
  const lines = out.stdout.split('\n').map((l) => l.trim().replace(/,$/, '')).filter(Boolean);
  const duration = Number(lines.find((l) => !Number.isNaN(Number(l))) ?? 0);
  return { codecs: lines.filter((l) => Number.isNaN(Number(l))).sort(), duration };
}

/** The picture at `at` s, as 160x90 grey levels. */
export function pictureAt(file, at) {
  const out = spawnSync('ffmpeg', ['-v', 'error', '-ss', String(at), '-i', file, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'gray', '-s', '160x90', 'pipe:1']);
  return out.stdout;
}
