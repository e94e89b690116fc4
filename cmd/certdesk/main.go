// Command certdesk runs the S/MIME certificate portal.
//
//	certdesk serve      run the portal (HTTP, mail worker, scheduler)
//	certdesk migrate    apply database migrations and exit
//	certdesk user add   add a user
//	certdesk contract   set or show an account's contract terms
//
// Every flag can also be given as an environment variable: --data-dir is
// CERTDESK_DATA_DIR, and so on.
package main

import (
	"fmt"
	"os"
)

var commands = map[string]func(args []string) error{
	"serve":    cmdServe,
	"migrate":  cmdMigrate,
	"user":     cmdUser,
	"apikey":   cmdAPIKey,
	"ca":       cmdCA,
	"contract": cmdContract,
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		usage()
		os.Exit(2)
	}
	if err := cmd(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "certdesk:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: certdesk <command> [flags]

commands:
  serve        run the portal
  migrate      apply database migrations
  user add     add a user (--email --name --role [--account])
  ca init      create the root and issuing CA in the data directory
  ca import    import an issuing CA certificate and key
  apikey create --user EMAIL   create an API key
  contract set|show --account NAME   set or show a customer account's contract terms`)
}
