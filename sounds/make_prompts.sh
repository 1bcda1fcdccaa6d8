#!/bin/sh
# Regenerate every prompt WAV from prompts.txt (espeak-ng + sox), plus the language-neutral
# sounds: beep.wav, silence_1s.wav and hold_music.wav.
# Output: 8 kHz mono 16-bit signed PCM, speech normalised to -3 dBFS, leading and trailing
# silence trimmed so prompts can be chained (say-number) without gaps.
# Usage: sounds/make_prompts.sh            (from any directory; needs espeak-ng and sox)
set -eu

cd "$(dirname "$0")"
for tool in espeak-ng sox; do
    command -v "$tool" >/dev/null || { echo "make_prompts.sh: $tool not found (apt-get install espeak-ng sox)" >&2; exit 1; }
done

FMT="-r 8000 -c 1 -b 16 -e signed-integer"
TRIM="silence 1 0.01 0.1% reverse silence 1 0.01 0.1% reverse"

count=0
while IFS='|' read -r lang name text; do
    case "$lang" in ''|'#'*) continue ;; esac
    out="$lang/$name.wav"
    mkdir -p "$(dirname "$out")"
    # -m: the text is SSML, so a <voice xml:lang=".."> span can switch language mid-prompt.
    printf '<speak>%s</speak>\n' "$text" \
        | espeak-ng -m -v "$lang" -s 150 --stdout \
        | sox -V1 -t wav - $FMT "$out" $TRIM norm -3
    count=$((count + 1))
done < prompts.txt
echo "made $count prompts"

# A 1 kHz beep (voicemail tone) and one second of silence.
sox -V1 -n $FMT beep.wav synth 0.25 sine 1000 fade 0.01 0.25 0.01 norm -6
sox -V1 -n $FMT silence_1s.wav trim 0 1

# Music on hold: a slow plucked arpeggio over a soft sine bass, eight chords
# (C G Am Em F C F G), 8 notes of 0.375 s each, 24 s in all, kept quiet (-16 dBFS peak).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
i=0
melody=""
bass=""
for chord in "C4 E4 G4 C5 G4 E4 G4 E4:C3" "B3 D4 G4 B4 G4 D4 G4 D4:G2" \
             "A3 C4 E4 A4 E4 C4 E4 C4:A2" "B3 E4 G4 B4 G4 E4 G4 E4:E2" \
             "A3 C4 F4 A4 F4 C4 F4 C4:F2" "C4 E4 G4 C5 G4 E4 G4 E4:C3" \
             "A3 C4 F4 A4 F4 C4 F4 C4:F2" "B3 D4 G4 B4 G4 D4 F4 D4:G2"; do
    notes=${chord%%:*}
    root=${chord##*:}
    for note in $notes; do
        i=$((i + 1))
        sox -V1 -n $FMT "$tmp/m$i.wav" synth 0.375 pluck "$note" fade 0 0.375 0.2
        melody="$melody $tmp/m$i.wav"
    done
    sox -V1 -n $FMT "$tmp/b$i.wav" synth 3 sine "$root" fade 0.3 3 0.6 vol 0.5
    bass="$bass $tmp/b$i.wav"
done
sox -V1 $melody "$tmp/melody.wav"
sox -V1 $bass "$tmp/bass.wav"
sox -V1 -m "$tmp/melody.wav" "$tmp/bass.wav" $FMT hold_music.wav reverb 30 fade 0 24 1 norm -16
echo "made beep.wav silence_1s.wav hold_music.wav"
