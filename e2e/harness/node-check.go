// stella-node-check runs in a Pod of the test node and proves that cluster DNS and the
// `kubernetes` Service work for an in-cluster client: it resolves the API server's Service name
// through the Pod's resolv.conf, speaks TLS to it (verified with the ServiceAccount's ca.crt),
// and authenticates with the ServiceAccount token (a SelfSubjectAccessReview, which only
// authenticated users may create). With --token-review it also asks the API server whose token
// it holds (needs `create tokenreviews`, e.g. the system:auth-delegator ClusterRole) and prints
// the user name. Each step prints one line; the first failure exits 1 with the reason.
//
// Built by e2e/harness/build-kubernetes.sh inside the Kubernetes source tree (for the vendored
// client-go) and shipped as the one file of the image stella.test/node-check.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

func fail(step string, err error) {
	fmt.Printf("FAILED %s: %v\n", step, err)
	os.Exit(1)
}

func main() {
	name := flag.String("name", "kubernetes.default.svc.cluster.local", "the API server's Service name")
	tokenReview := flag.Bool("token-review", false, "print the user the ServiceAccount token authenticates as")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	var addrs []string
	var err error
	for {
		addrs, err = net.DefaultResolver.LookupHost(ctx, *name)
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		fail("resolve "+*name, err)
	}
	fmt.Printf("resolved %s %s\n", *name, strings.Join(addrs, ","))

	token, err := os.ReadFile(saDir + "/token")
	if err != nil {
		fail("read the ServiceAccount token", err)
	}
	config := &rest.Config{
		Host:            "https://" + net.JoinHostPort(*name, "443"),
		BearerToken:     strings.TrimSpace(string(token)),
		TLSClientConfig: rest.TLSClientConfig{CAFile: saDir + "/ca.crt"},
		Timeout:         10 * time.Second,
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		fail("client", err)
	}
	version, err := client.Discovery().ServerVersion()
	if err != nil {
		fail("GET /version through the Service", err)
	}
	fmt.Printf("version %s\n", version.GitVersion)

	namespace, _ := os.ReadFile(saDir + "/namespace")
	review := &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: string(namespace), Verb: "get", Resource: "pods",
			},
		},
	}
	answer, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		fail("SelfSubjectAccessReview with the ServiceAccount token", err)
	}
	fmt.Printf("authenticated (may get pods in %s: %t)\n", namespace, answer.Status.Allowed)

	if *tokenReview {
		tr := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: config.BearerToken}}
		result, err := client.AuthenticationV1().TokenReviews().Create(ctx, tr, metav1.CreateOptions{})
		if err != nil {
			fail("TokenReview", err)
		}
		if !result.Status.Authenticated {
			fail("TokenReview", fmt.Errorf("token not authenticated: %s", result.Status.Error))
		}
		fmt.Printf("user %s\n", result.Status.User.Username)
	}
	fmt.Println("ok")
}
