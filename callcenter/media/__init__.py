"""Media plane: RTP/RTCP, G.711, DTMF, prompts, recording and the engine with one 20 ms clock."""
