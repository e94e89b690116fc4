package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// loadOrCreateSessionKeys keeps the session cookie keys (a 64-byte HMAC
// key and a 32-byte AES key) in the data directory with mode 0600,
// generating them on first start.
func loadOrCreateSessionKeys(dataDir string) ([][]byte, error) {
	path := filepath.Join(dataDir, "session.keys")
	if b, err := os.ReadFile(path); err == nil {
		parts := strings.Fields(string(b))
		if len(parts) != 2 {
			return nil, fmt.Errorf("%s: malformed", path)
		}
		hashKey, err1 := hex.DecodeString(parts[0])
		blockKey, err2 := hex.DecodeString(parts[1])
		if err1 != nil || err2 != nil || len(hashKey) != 64 || len(blockKey) != 32 {
			return nil, fmt.Errorf("%s: malformed", path)
		}
		return [][]byte{hashKey, blockKey}, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	hashKey, blockKey := make([]byte, 64), make([]byte, 32)
	if _, err := rand.Read(hashKey); err != nil {
		return nil, err
	}
	if _, err := rand.Read(blockKey); err != nil {
		return nil, err
	}
	body := hex.EncodeToString(hashKey) + "\n" + hex.EncodeToString(blockKey) + "\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return nil, err
	}
	return [][]byte{hashKey, blockKey}, nil
}
